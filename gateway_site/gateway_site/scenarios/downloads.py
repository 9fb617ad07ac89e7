"""Datasets and model versions as files to take away: a dataset as the MNIST IDX pair (gzipped, in a ZIP) or a CSV
of `label` and 784 pixel columns; a version as a self-contained ONNX file or its safetensors weights, with a model
card that says what they are and how to run them."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator

from gateway_site import peers
from kit.contracts import gateway
from kit.digitfiles import ZIP_TIME, csv_lines, idx_file
from kit.errors import AppError

DATASET_FORMATS = {"idx": "application/zip", "csv": "text/csv; charset=utf-8"}
MODEL_FORMATS = ("onnx", "safetensors")


def checked_format(given: str | None, allowed, default: str) -> str:
    chosen = given or default
    if chosen not in allowed:
        raise AppError("invalid", f"format must be one of {', '.join(allowed)}.", details={"format": chosen})
    return chosen


def dataset_file(dataset_id: int, fmt: str) -> tuple[bytes | Iterator[str], str]:
    """The dataset's bytes (IDX) or lines (CSV), and its file name."""
    dataset = peers.storage().get_dataset(dataset_id)
    images, labels = peers.storage().dataset_arrays(dataset_id)
    stem = f"dataset-{dataset_id}-{dataset['split']}"
    if fmt == "csv":
        return csv_lines(images, labels), f"{stem}.csv"
    prefix = "t10k" if dataset["split"] == "test" else dataset["split"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # the members are gzipped already
        for name, array in ((f"{prefix}-images-idx3-ubyte.gz", images), (f"{prefix}-labels-idx1-ubyte.gz", labels)):
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), idx_file(array))
    return buffer.getvalue(), f"{stem}-idx.zip"


def model_file(version_id: int, fmt: str) -> tuple[bytes, str, str]:
    """The version as ONNX or safetensors: its bytes, file name and SHA-256."""
    version = peers.storage().get_model_version(version_id)
    if fmt == "onnx":
        data = peers.ml().model_onnx(version_id)
    else:
        data = peers.storage().get_blob(version["weights_sha256"])
    return data, f"model-{version['version']}.{fmt}", hashlib.sha256(data).hexdigest()


def model_card(version_id: int) -> gateway.ModelCard:
    version = peers.storage().get_model_version(version_id)
    metrics = version["metrics"]
    return {
        "id": version["id"], "version": version["version"], "architecture": version["architecture"],
        "hyperparameters": version["hyperparameters"], "datasets": version["datasets"],
        "parameter_count": version["parameter_count"], "created_at": version["created_at"],
        "accuracy": metrics.get("accuracy"), "evaluated_on": metrics.get("evaluated_on"),
        "weights_sha256": version["weights_sha256"],
        "input": "pixels: float32 (N, 28, 28), 0-255, a canonical image: white digit on black, cropped to its ink, "
                 "longer side 20 px, centred by mass (the `image` every prediction answers, base64 of 784 bytes)",
        "output": "probabilities: float32 (N, 10), digits 0-9",
        "files": {fmt: f"/api/models/{version_id}/download?format={fmt}" for fmt in MODEL_FORMATS},
    }
