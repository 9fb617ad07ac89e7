"""The error browser's data: a version's confusion matrix on a dataset (its held-out part, or all of it, as an
evaluation judges), the digits in one of its cells, and why the version answered each (overlays)."""

from __future__ import annotations

import threading

import numpy as np

from kit.errors import AppError
from ml_svc import peers
from ml_svc.evaluation import dataset_split, held_out_dataset_id, image_b64, predict_proba
from ml_svc.explain import explain
from ml_svc.remembered import Remembered
from ml_svc.serving import model_cache, version_info

CELL_LIMIT = 48  # digits a cell answers at most, the most confident first
OVERLAYS_LIMIT = 48
KEPT = 2  # (version, dataset, part) judged and remembered per process: versions and datasets never change
PARTS = ("held-out", "all")
_kept: Remembered[tuple[int, int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = Remembered(KEPT)
_judging = threading.Lock()  # one judgement at a time: clicks on several cells at once load the dataset once


def _judged(version_id: int, dataset_id: int, part: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, the version's probabilities) on the dataset's part."""
    key = (version_id, dataset_id, part)
    judged = _kept.get(key)
    if judged is not None:
        return judged
    with _judging:
        return _kept.get(key) or _kept.put(key, _judge(key))


def _judge(key: tuple[int, int, str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    version_id, dataset_id, part = key
    loaded = model_cache().version(version_id)
    storage = peers.storage()
    if part == "held-out":
        split = dataset_split(storage, dataset_id)
        images, labels = split.val_images, split.val_labels
    else:
        images, labels = storage.dataset_arrays(dataset_id)
    return images, labels.astype(np.int64), predict_proba(loaded.module, images)


def confusion_cell(*, version_id: int, dataset_id: int | None, part: str, true: int | None, predicted: int | None,
                   limit: int = CELL_LIMIT) -> dict:
    """The version's confusion matrix on a dataset (default: its own held-out digits), and, if `true` and
    `predicted` are given, that cell's digits, the most confident first (index in the part, image, confidence)."""
    if part not in PARTS:
        raise AppError("invalid", f"part must be one of {', '.join(PARTS)}", details={"part": part})
    if dataset_id is None:
        dataset_id = held_out_dataset_id(model_cache().version(version_id).version)
    images, labels, probabilities = _judged(version_id, dataset_id, part)
    answers = probabilities.argmax(1)
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (labels, answers), 1)
    result = {"model": version_info(version_id), "dataset_id": dataset_id, "part": part, "count": int(len(labels)),
              "matrix": matrix.tolist(), "cell": None}
    if true is not None and predicted is not None:
        members = np.flatnonzero((labels == true) & (answers == predicted))
        confidence = probabilities[members, predicted]
        chosen = members[np.argsort(-confidence, kind="stable")[:limit]]
        result["cell"] = {"true": true, "predicted": predicted, "count": int(len(members)), "items": [
            {"index": int(i), "image": image_b64(images[i]), "confidence": round(float(probabilities[i, predicted]), 4)}
            for i in chosen]}
    return result


def overlays(*, model_id: int, images: list[str], target: int | None) -> list[dict]:
    """Why the version answers what it does for each canonical image: its answer and the overlay PNG (explain.py,
    remembered per image)."""
    if len(images) > OVERLAYS_LIMIT:
        raise AppError("invalid", f"at most {OVERLAYS_LIMIT} images at a time", details={"images": len(images)})
    answers = []
    for image in images:
        explanation = explain(image_b64=image, model_id=model_id, target=target, with_nearest=False)
        answers.append({"digit": explanation["digit"], "target": explanation["target"],
                        "overlay_png": explanation["overlay_png"]})
    return answers
