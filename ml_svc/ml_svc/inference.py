"""Serving: each process keeps the `production` model in memory and follows alias moves."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from django.conf import settings
from torch import nn

from kit.errors import AppError, PeerUnavailable
from kit.metrics import PREDICTIONS
from ml_svc import peers
from ml_svc.architectures import get_architecture
from ml_svc.preprocessing import (
    PixelBudget,
    WorkBudgetExceeded,
    canonical_from_bytes,
    canonical_from_pixels,
)
from ml_svc.serving import INT8, Serving, checked_int8, float32_serving
from ml_svc.weights import load_weights

logger = logging.getLogger(__name__)


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

    @property
    def serving(self) -> Serving:
        return self._chosen or self.float32

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities (N, 10) of canonical uint8 images (N, 28, 28), as predictions get them."""
        return self.serving.probabilities(images)

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
    """The production model (re-checked every `alias_refresh_s`) and a few pinned versions."""

    def __init__(self, refresh_s: float, pinned_capacity: int = 4):
        self.refresh_s = refresh_s
        self.pinned_capacity = pinned_capacity
        self._lock = threading.Lock()
        self._production: LoadedModel | None = None
        self._checked_at = 0.0
        self._pinned: OrderedDict[int, LoadedModel] = OrderedDict()
        self.comparisons: dict[tuple[int, int], dict] = {}  # see compare_versions

    def production(self, *, warm: bool = True) -> LoadedModel:
        """The production version; `warm` readies a newly promoted one to answer predictions before it is returned
        (export, quantisation), which a training job that only needs its module and name does without."""
        with self._lock:
            # While nothing serves, look again much sooner: the first model is promoted any moment, and a process
            # that answers `no_model` for seconds after another one serves would fail its users meanwhile.
            interval = self.refresh_s if self._production is not None else min(self.refresh_s, NO_MODEL_RECHECK_S)
            if time.monotonic() - self._checked_at >= interval:
                self._refresh_production(warm)
            if self._production is None:
                raise AppError("no_model", "No model is serving yet: train one and promote it to production.", status=503)
            return self._production

    def _refresh_production(self, warm: bool) -> None:
        try:
            version = peers.storage().production_version()
        except PeerUnavailable:
            if self._production is None:
                raise
            logger.warning("storage unreachable; still serving v%s", self._production.version_id)
            return
        if version is None:
            self._checked_at = time.monotonic()
            return
        if self._production is None or self._production.version_id != version["id"]:
            try:
                loaded = load_model_version(version)
            except AppError as exc:
                if self._production is None:
                    raise
                logger.error("keeping v%s: could not load v%s: %s", self._production.version_id, version["id"], exc.message)
            else:
                if warm:  # export now, not on the first request; quantise beside the requests
                    loaded.prepare_int8()
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
    PREDICTIONS.labels(loaded.info["version"], str(int(probabilities.argmax())), loaded.serving.precision).inc()
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
            PREDICTIONS.labels(loaded.info["version"], str(int(probs.argmax())), loaded.serving.precision).inc()
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
    # Judged in float32, as training judged them (a version may serve in int8: serving.py).
    before, after = baseline.float32.probabilities(data.val_images), candidate.float32.probabilities(data.val_images)
    return {"dataset_id": data.dataset_id, **compare(before, after, data.val_images, data.val_labels)}
