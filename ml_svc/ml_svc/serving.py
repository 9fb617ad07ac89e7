"""What serves a version: its network exported to ONNX and run by ONNX Runtime, quantised to int8 when that keeps
its held-out accuracy.

int8 is static quantisation (QDQ format, per-channel, 7-bit weights), calibrated on the version's own training
digits. 7-bit weights, because on x86 CPUs without VNNI ONNX Runtime adds uint8 x int8 products up in 16 bits and
8-bit weights saturate them (2.2 points lost on the official test set, bench/serving_model.py); 7-bit ones keep the
accuracy at 0.7-0.9x the float32 cost. Each version is checked before int8 may serve it: on its held-out digits the
quantised network must be within `int8_max_accuracy_drop` of the float32 one, else float32 serves.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from onnxruntime import quantization
from torch import nn

from ml_svc.preprocessing import MNIST_MEAN, MNIST_STD

logger = logging.getLogger(__name__)

FLOAT32, INT8 = "float32", "int8"
PRECISIONS = (FLOAT32, INT8)
CALIBRATION_IMAGES = 500


def onnx_inputs(images: np.ndarray) -> np.ndarray:
    """Canonical uint8 images (N, 28, 28) as the exported network's input: normalised float32 (N, 1, 28, 28)."""
    return ((images.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD)[:, None]


def session_probabilities(session: onnxruntime.InferenceSession, images: np.ndarray) -> np.ndarray:
    """Class probabilities (N, 10) of canonical uint8 images (N, 28, 28) from an exported network's session."""
    logits = session.run(None, {"images": onnx_inputs(images)})[0]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def onnx_bytes(module: nn.Module) -> bytes:
    """The module exported to ONNX: input `images` (N, 1, 28, 28) normalised float32, output `logits` (N, 10)."""
    buffer = io.BytesIO()
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(
            module, torch.zeros(1, 1, 28, 28), buffer, input_names=["images"], output_names=["logits"],
            dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}}, dynamo=False,
        )
    return buffer.getvalue()


def session_of(model: bytes, threads: int = 1, optimize: bool = True) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session as serving runs it: `threads` intra-op threads that do not spin between requests, and
    every graph optimisation (`optimize=False` only to measure what they buy: bench/serving_model.py)."""
    options = onnxruntime.SessionOptions()
    if not optimize:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class _Calibration(quantization.CalibrationDataReader):
    def __init__(self, images: np.ndarray, batch: int = 50):
        self._batches = iter([{"images": onnx_inputs(images[i:i + batch])} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self._batches, None)


def quantised(model: bytes, calibration: np.ndarray) -> bytes:
    """`model` statically quantised to int8 (QDQ, per-channel, 7-bit weights), calibrated on `calibration` digits."""
    quantization_logger = logging.getLogger("root")  # the tool logs every node it skips at INFO
    with tempfile.TemporaryDirectory(prefix="digitlab-int8-") as workdir:
        source, prepared, target = (Path(workdir) / name for name in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        source.write_bytes(model)
        level = quantization_logger.level
        quantization_logger.setLevel(logging.WARNING)
        try:
            quantization.quant_pre_process(str(source), str(prepared))
            quantization.quantize_static(
                str(prepared), str(target), _Calibration(calibration), quant_format=quantization.QuantFormat.QDQ,
                per_channel=True, reduce_range=True, activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8,
            )
        finally:
            quantization_logger.setLevel(level)
        return target.read_bytes()


@dataclass(frozen=True)
class Serving:
    """The ONNX model that answers predictions, its session and precision, and the check that chose it."""

    model: bytes
    session: onnxruntime.InferenceSession
    precision: str
    check: dict = field(default_factory=dict)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return session_probabilities(self.session, images)


def float32_serving(module: nn.Module, *, threads: int) -> Serving:
    model = onnx_bytes(module)
    return Serving(model, session_of(model, threads=threads), FLOAT32)


def checked_int8(float32: Serving, *, threads: int, max_drop: float, train_images: np.ndarray,
                 val_images: np.ndarray, val_labels: np.ndarray) -> Serving:
    """The int8 network if, on the held-out digits, its accuracy is at most `max_drop` below float32's; else (or if
    quantising fails) `float32`, with the reason in its check."""
    if not len(train_images) or not len(val_images):
        return replace(float32, check={"reason": "no held-out digits to check int8 on"})
    try:
        int8_model = quantised(float32.model, train_images[:CALIBRATION_IMAGES])
        int8 = session_of(int8_model, threads=threads)
    except Exception as exc:  # noqa: BLE001 -- a tool failure must not stop the version from serving
        logger.warning("int8 quantisation failed, float32 serves: %s", exc)
        return replace(float32, check={"reason": f"quantisation failed: {exc}"})
    before, after = float32.probabilities(val_images).argmax(1), session_probabilities(int8, val_images).argmax(1)
    check = {
        "held_out": int(len(val_labels)),
        "float32_accuracy": float((before == val_labels).mean()),
        "int8_accuracy": float((after == val_labels).mean()),
        "agreement": float((before == after).mean()),
        "max_drop": max_drop,
    }
    if check["int8_accuracy"] >= check["float32_accuracy"] - max_drop:
        return Serving(int8_model, int8, INT8, check)
    return replace(float32, check={**check, "reason": "int8 lost more held-out accuracy than allowed"})


def serving_for(module: nn.Module, *, precision: str, threads: int, max_drop: float,
                train_images: np.ndarray | None = None, val_images: np.ndarray | None = None,
                val_labels: np.ndarray | None = None) -> Serving:
    """What serves `module` when `precision` is asked for (the benchmark's entry: ml_svc goes step by step)."""
    float32 = float32_serving(module, threads=threads)
    if precision != INT8:
        return replace(float32, check={"reason": "float32 asked for"})
    if train_images is None or val_images is None or val_labels is None:
        return replace(float32, check={"reason": "no held-out digits to check int8 on"})
    return checked_int8(float32, threads=threads, max_drop=max_drop, train_images=train_images,
                        val_images=val_images, val_labels=val_labels)
