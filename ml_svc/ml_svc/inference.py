"""Serving: each process keeps the `production` model in memory and follows alias moves."""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import onnxruntime
import torch
from django.conf import settings
from torch import nn

from kit.errors import AppError, PeerUnavailable
from kit.metrics import PREDICTIONS
from ml_svc import peers
from ml_svc.architectures import get_architecture
from ml_svc.preprocessing import (
    MNIST_MEAN,
    MNIST_STD,
    PixelBudget,
    WorkBudgetExceeded,
    canonical_from_bytes,
    canonical_from_pixels,
)
from ml_svc.weights import load_weights

logger = logging.getLogger(__name__)


def version_info(version_id: int) -> dict:
    return {"id": version_id, "version": f"v{version_id}"}


@dataclass(frozen=True)
class LoadedModel:
    """A stored version: its torch module (evaluation, fine-tuning) and, for serving, the same
    network exported to ONNX and run by ONNX Runtime (5x faster than eager torch on one image)."""

    version_id: int
    module: nn.Module

    @property
    def info(self) -> dict:
        return version_info(self.version_id)

    @cached_property
    def session(self) -> onnxruntime.InferenceSession:
        return onnx_session(self.module)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N, 10) of canonical uint8 images (N, 28, 28)."""
        return session_probabilities(self.session, images)


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


def onnx_session(module: nn.Module) -> onnxruntime.InferenceSession:
    """The module as an ONNX Runtime session on one thread (serving processes are one per core)."""
    return session_of(onnx_bytes(module), threads=settings.TORCH_THREADS)


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


def load_model_version(version: dict) -> LoadedModel:
    """Build the module of a stored version and load its verified weights."""
    architecture = get_architecture(version["architecture"])
    module = architecture.build(version["hyperparameters"])
    weights = peers.storage().get_blob(version["weights_sha256"])
    load_weights(module, weights, expected_sha256=version["weights_sha256"])
    return LoadedModel(version_id=version["id"], module=module)


NO_MODEL_RECHECK_S = 0.25


class ModelCache:
    """The production model (re-checked every `alias_refresh_s`) and a few pinned versions."""

    def __init__(self, refresh_s: float, pinned_capacity: int = 4):
        self.refresh_s = refresh_s
        self.pinned_capacity = pinned_capacity
        self._lock = threading.Lock()
        self._production: LoadedModel | None = None
        self._checked_at = 0.0
        self._pinned: OrderedDict[int, LoadedModel] = OrderedDict()
        self.comparisons: dict[tuple[int, int], dict] = {}  # see compare_versions

    def production(self) -> LoadedModel:
        with self._lock:
            # While nothing serves, look again much sooner: the first model is promoted any moment, and a process
            # that answers `no_model` for seconds after another one serves would fail its users meanwhile.
            interval = self.refresh_s if self._production is not None else min(self.refresh_s, NO_MODEL_RECHECK_S)
            if time.monotonic() - self._checked_at >= interval:
                self._refresh_production()
            if self._production is None:
                raise AppError("no_model", "No model is serving yet: train one and promote it to production.", status=503)
            return self._production

    def _refresh_production(self) -> None:
        try:
            alias = peers.storage().get_alias("production")
        except PeerUnavailable:
            if self._production is None:
                raise
            logger.warning("storage unreachable; still serving v%s", self._production.version_id)
            return
        except AppError as exc:
            if exc.status == 404:
                self._checked_at = time.monotonic()
                return
            raise
        version = alias["model_version"]
        if self._production is None or self._production.version_id != version["id"]:
            try:
                loaded = load_model_version(version)
            except AppError as exc:
                if self._production is None:
                    raise
                logger.error("keeping v%s: could not load v%s: %s", self._production.version_id, version["id"], exc.message)
            else:
                loaded.session  # noqa: B018 -- export now, not on the first request
                logger.info("now serving v%s", loaded.version_id)
                self._production = loaded
        self._checked_at = time.monotonic()

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


def canonical_input(payload: dict, budget: PixelBudget | None = None) -> np.ndarray:
    """The 28x28 canonical image from `image_base64` (PNG/JPEG) or `pixels` (28x28)."""
    if not isinstance(payload, dict):
        raise AppError("invalid", "The body must be a JSON object.")
    given = [key for key in ("image_base64", "pixels") if payload.get(key) is not None]
    if len(given) != 1:
        raise AppError("invalid", "Send exactly one of image_base64 (PNG or JPEG) or pixels (28x28).")
    if given[0] == "pixels":
        return canonical_from_pixels(payload["pixels"])
    value = payload["image_base64"]
    if not isinstance(value, str):
        raise AppError("invalid", "image_base64 must be a base64 string.")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        data = base64.b64decode(value, validate=True)
    except ValueError:
        raise AppError("invalid", "image_base64 is not valid base64.") from None
    return canonical_from_bytes(data, budget)


def requested_model(payload: dict) -> LoadedModel:
    """The version a request names with `model_id`, else the production one."""
    model_id = payload.get("model_id")
    if model_id is None:
        return model_cache().production()
    if isinstance(model_id, bool) or not isinstance(model_id, int):
        raise AppError("invalid", "model_id must be an integer.")
    return model_cache().version(model_id)


def predict(payload: dict) -> dict:
    """Classify one image: digit, probabilities, the model, and the 28x28 input it saw."""
    started = time.perf_counter()
    image = canonical_input(payload)
    loaded = requested_model(payload)
    probabilities = loaded.probabilities(image[None])[0]
    PREDICTIONS.labels(loaded.info["version"], str(int(probabilities.argmax()))).inc()
    return {
        "digit": int(probabilities.argmax()),
        "probabilities": [round(float(p), 6) for p in probabilities],
        "model": loaded.info,
        "image": base64.b64encode(image.tobytes()).decode(),
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }


MAX_BATCH = 256


def predict_batch(payload: dict) -> dict:
    """Classify up to MAX_BATCH images in one pass; a bad image is reported in its place, not fatal."""
    images = payload.get("images") if isinstance(payload, dict) else None
    if not isinstance(images, list) or not 1 <= len(images) <= MAX_BATCH:
        raise AppError("invalid", f"images must be a list of 1 to {MAX_BATCH} items, each like a /predict body.")
    started = time.perf_counter()
    canonical, results = [], []
    budget = PixelBudget(settings.MAX_PIXELS_PER_REQUEST)
    for item in images:
        try:
            canonical.append(canonical_input(item, budget))
            results.append(None)
        except WorkBudgetExceeded:
            raise  # the whole request is refused: its images are too much work together
        except AppError as exc:
            results.append({"error": {"code": exc.code, "message": exc.message, "status": exc.status}})
    loaded = requested_model(payload)
    if canonical:
        probabilities = loaded.probabilities(np.stack(canonical))
    answers = iter(zip(canonical, probabilities if canonical else [], strict=True))
    for position, result in enumerate(results):
        if result is None:
            image, probs = next(answers)
            PREDICTIONS.labels(loaded.info["version"], str(int(probs.argmax()))).inc()
            results[position] = {
                "digit": int(probs.argmax()),
                "probabilities": [round(float(p), 6) for p in probs],
                "image": base64.b64encode(image.tobytes()).decode(),
            }
    return {"model": loaded.info, "results": results, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}


def compare_versions(baseline_id: int, candidate_id: int) -> dict:
    """Both versions on the held-out digits of the baseline's first dataset. Versions, weights and
    datasets never change, so neither does a pair's comparison: computed once, then remembered."""
    cache = model_cache()
    key = (baseline_id, candidate_id)
    result = cache.comparisons.get(key)
    if result is None:
        result = _comparison(cache.version(baseline_id), cache.version(candidate_id))
        cache.comparisons[key] = result
        while len(cache.comparisons) > COMPARISONS_KEPT:
            cache.comparisons.pop(next(iter(cache.comparisons)), None)
    return {"baseline": version_info(baseline_id), "candidate": version_info(candidate_id), **result}


def _comparison(baseline: LoadedModel, candidate: LoadedModel) -> dict:
    from ml_svc.evaluation import compare, dataset_split, held_out_dataset_id

    storage = peers.storage()
    data = dataset_split(storage, held_out_dataset_id(storage.get_model_version(baseline.version_id)))
    before, after = baseline.probabilities(data.val_images), candidate.probabilities(data.val_images)
    return {"dataset_id": data.dataset_id, **compare(before, after, data.val_images, data.val_labels)}
