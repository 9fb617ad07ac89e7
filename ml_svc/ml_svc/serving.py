"""What serves a version: its network exported to ONNX and run by ONNX Runtime, quantised to int8 when that keeps
its held-out accuracy; and the cache of loaded versions every process keeps (`model_cache()`: the `production`
version, following alias moves, and a few versions requests name).

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
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from django.conf import settings
from onnxruntime import quantization
from torch import nn

from kit.errors import AppError
from ml_svc import peers
from ml_svc.architectures import get_architecture
from ml_svc.preprocessing import MNIST_MEAN, MNIST_STD
from ml_svc.weights import load_weights

logger = logging.getLogger(__name__)

FLOAT32, INT8 = "float32", "int8"
_EXPORTING = threading.Lock()  # torch's ONNX exporter is process-wide state: one export at a time
PRECISIONS = (FLOAT32, INT8)
CALIBRATION_IMAGES = 500


def onnx_inputs(images: np.ndarray) -> np.ndarray:
    """Canonical uint8 images (N, 28, 28) as the exported network's input: normalised float32 (N, 1, 28, 28)."""
    return ((images.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD)[:, None]


# Images per ONNX Runtime call: a whole held-out set at once (6,000 of a 60,000-image dataset, when versions are
# compared or an int8 network is checked) took 2.9 GB of activations in the serving process, 1,024 at a time 0.45 GB.
# A prediction request (at most 256) is one call.
SESSION_CHUNK = 1024


def session_probabilities(session: onnxruntime.InferenceSession, images: np.ndarray) -> np.ndarray:
    """Class probabilities (N, 10) of canonical uint8 images (N, 28, 28) from an exported network's session, run
    SESSION_CHUNK images at a time."""
    if len(images) <= SESSION_CHUNK:
        logits = session.run(None, {"images": onnx_inputs(images)})[0]
    else:
        logits = np.concatenate([session.run(None, {"images": onnx_inputs(images[start:start + SESSION_CHUNK])})[0]
                                 for start in range(0, len(images), SESSION_CHUNK)])
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def onnx_bytes(module: nn.Module) -> bytes:
    """The module exported to ONNX: input `images` (N, 1, 28, 28) normalised float32, output `logits` (N, 10)."""
    buffer = io.BytesIO()
    module.eval()
    with _EXPORTING, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
        torch.onnx.export(
            module, torch.zeros(1, 1, 28, 28), buffer, input_names=["images"], output_names=["logits"],
            dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}}, dynamo=False,
        )
    return buffer.getvalue()


class _Portable(nn.Module):
    """A version as a file to take away: canonical 28x28 images (white digit on black, 0-255, as the API's `image`)
    in, class probabilities out, so that a plain ONNX Runtime session needs no code of ours."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        normalised = (pixels / 255.0 - MNIST_MEAN) / MNIST_STD
        return torch.softmax(self.module(normalised[:, None]), dim=1)


def portable_onnx(module: nn.Module) -> bytes:
    """The module as a self-contained ONNX file: input `pixels` float32 (N, 28, 28) 0-255, output `probabilities`
    (N, 10)."""
    buffer = io.BytesIO()
    portable = _Portable(module).eval()
    with _EXPORTING, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            portable, torch.zeros(1, 28, 28), buffer, input_names=["pixels"], output_names=["probabilities"],
            dynamic_axes={"pixels": {0: "n"}, "probabilities": {0: "n"}}, dynamo=False,
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


def version_info(version_id: int) -> dict:
    return {"id": version_id, "version": f"v{version_id}"}


@dataclass(eq=False)
class LoadedModel:
    """A stored version: its torch module (evaluation, fine-tuning) and the same network exported to ONNX and run by
    ONNX Runtime (5x faster than eager torch on one image): `float32` to judge it, and `serving` to answer
    predictions. `serving` is float32 until `prepare_int8()` has quantised and checked the version in the background
    (serving.py), then int8 if the version passed (its `check` says why either way): no request waits for
    quantisation. Versions a request names by `model_id` serve in float32."""

    version: dict
    module: nn.Module
    _chosen: Serving | None = field(default=None, init=False, repr=False)
    _preparing: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def version_id(self) -> int:
        return int(self.version["id"])

    @property
    def info(self) -> dict:
        return version_info(self.version_id)

    @cached_property
    def float32(self) -> Serving:
        return float32_serving(self.module, threads=settings.TORCH_THREADS)

    @cached_property
    def portable_onnx(self) -> bytes:
        """The version as a self-contained ONNX file to download (`portable_onnx`)."""
        return portable_onnx(self.module)

    @property
    def serving(self) -> Serving:
        return self._chosen or self.float32

    def prepare_int8(self) -> threading.Thread | None:
        """Start (once) quantising and checking this version in a background thread, if `serving_precision` asks
        for int8; the thread, to wait for it."""
        if settings.SERVING_PRECISION == INT8 and self._preparing is None:
            self.float32  # noqa: B018 -- exported here, under the caller's lock, not in two threads at once
            self._preparing = threading.Thread(target=self._quantise, name=f"int8-v{self.version_id}", daemon=True)
            self._preparing.start()
        return self._preparing

    def _quantise(self) -> None:
        from ml_svc.evaluation import dataset_split, held_out_dataset_id

        try:
            data = dataset_split(peers.storage(), held_out_dataset_id(self.version))
        except AppError as exc:  # no recorded dataset, or storage unreachable: float32 goes on serving
            logger.warning("v%s serves in float32: its held-out digits are unavailable (%s)", self.version_id, exc.message)
            return
        chosen = checked_int8(self.float32, threads=settings.TORCH_THREADS, max_drop=settings.INT8_MAX_ACCURACY_DROP,
                              train_images=data.train_images, val_images=data.val_images, val_labels=data.val_labels)
        logger.info("v%s serves in %s %s", self.version_id, chosen.precision, chosen.check)
        self._chosen = chosen


def load_model_version(version: dict) -> LoadedModel:
    """Build the module of a stored version and load its verified weights."""
    architecture = get_architecture(version["architecture"])
    module = architecture.build(version["hyperparameters"])
    weights = peers.storage().get_blob(version["weights_sha256"])
    load_weights(module, weights, expected_sha256=version["weights_sha256"])
    return LoadedModel(version=version, module=module)


NO_MODEL_RECHECK_S = 0.25


class ModelCache:
    """The production model, the candidate and its canary share (re-checked every `alias_refresh_s`), and a few
    pinned versions."""

    def __init__(self, refresh_s: float, pinned_capacity: int = 4):
        self.refresh_s = refresh_s
        self.pinned_capacity = pinned_capacity
        self._lock = threading.Lock()
        self._production: LoadedModel | None = None
        self._candidate: LoadedModel | None = None
        self._unloadable: int | None = None  # a candidate that failed to load
        self.canary_share = 0.0
        self._checked_at = 0.0
        self._pinned: OrderedDict[int, LoadedModel] = OrderedDict()
        self.comparisons: dict[tuple[int, int], dict] = {}  # see compare_versions

    def production(self, *, warm: bool = True) -> LoadedModel:
        """The production version; `warm` readies a newly promoted one to answer predictions before it is returned
        (export, quantisation), which a training job that only needs its module and name does without."""
        return self.serving(warm=warm)[0]

    def serving(self, *, warm: bool = True) -> tuple[LoadedModel, LoadedModel | None, float]:
        """(production, the candidate or None, the candidate's canary share of users). The candidate is loaded only
        by a process that serves (`warm`), and is None while it is production itself."""
        with self._lock:
            # While nothing serves, look again much sooner: the first model is promoted any moment, and a process
            # that answers `no_model` for seconds after another one serves would fail its users meanwhile.
            interval = self.refresh_s if self._production is not None else min(self.refresh_s, NO_MODEL_RECHECK_S)
            if time.monotonic() - self._checked_at >= interval:
                self._refresh(warm)
            if self._production is None:
                raise AppError("no_model", "No model is serving yet: train one and promote it to production.", status=503)
            return self._production, self._candidate, self.canary_share

    def _refresh(self, warm: bool) -> None:
        try:
            state = peers.storage().rollout()
        except AppError as exc:  # storage away, or answering what this process cannot use: keep what serves
            if self._production is None:
                raise
            logger.warning("storage: %s; still serving v%s", exc.message, self._production.version_id)
            self._checked_at = time.monotonic()
            return
        version = state["production"]
        if version is None:
            self._checked_at = time.monotonic()
            return
        # A candidate promoted to production is the candidate already loaded (and quantised): not loaded again.
        promoted = self._candidate if self._candidate and self._candidate.version_id == version["id"] else None
        self._production = self._loaded(promoted or self._production, version, warm, "production")
        candidate = state["candidate"]
        if not warm or candidate is None or candidate["id"] == version["id"]:
            self._candidate, self.canary_share = None, 0.0
        elif candidate["id"] != self._unloadable:  # one that failed to load is tried again only if the alias moves
            self._candidate = self._loaded(self._candidate, candidate, warm, "candidate")
            if self._candidate is None:
                self._unloadable = candidate["id"]
            self.canary_share = float(state["canary_share"]) if self._candidate is not None else 0.0
        self._checked_at = time.monotonic()

    def _loaded(self, current: LoadedModel | None, version: dict, warm: bool, role: str) -> LoadedModel | None:
        """`version` loaded, or `current` when it is that version already; `current` kept when loading fails (the
        first production's failure is raised)."""
        if current is not None and current.version_id == version["id"]:
            return current
        try:
            loaded = load_model_version(version)
        except AppError as exc:
            if current is None and role == "production":
                raise
            logger.error("%s: could not load v%s (%s); keeping %s", role, version["id"], exc.message,
                         f"v{current.version_id}" if current else "none")
            return current if role == "production" else None
        if warm:  # export now, not on the first request; quantise beside the requests
            loaded.prepare_int8()
        logger.info("%s is now v%s", role, loaded.version_id)
        return loaded

    def version(self, version_id: int) -> LoadedModel:
        with self._lock:
            if self._production is not None and self._production.version_id == version_id:
                return self._production
            if version_id in self._pinned:
                self._pinned.move_to_end(version_id)
                return self._pinned[version_id]
            loaded = load_model_version(peers.storage().get_model_version(version_id))
            self._pinned[version_id] = loaded
            while len(self._pinned) > self.pinned_capacity:
                self._pinned.popitem(last=False)
            return loaded


_cache: ModelCache | None = None
COMPARISONS_KEPT = 64


def model_cache() -> ModelCache:
    global _cache
    if _cache is None:
        _cache = ModelCache(settings.ALIAS_REFRESH_S)
    return _cache
