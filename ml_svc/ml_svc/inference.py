"""Predictions: a request's image made canonical (preprocessing.py) and classified by the model it asks for
(serving.py's cache: production, or a version named by `model_id`), one image or a batch."""

from __future__ import annotations

import base64
import logging
import time

import numpy as np
from django.conf import settings

from kit.errors import AppError
from kit.metrics import PREDICTIONS
from kit.preprocessing import (
    PixelBudget,
    WorkBudgetExceeded,
    canonical_from_bytes,
    canonical_from_pixels,
)
from ml_svc.serving import LoadedModel, model_cache

logger = logging.getLogger(__name__)


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


def serving_of(loaded: LoadedModel, payload: dict):
    """How a request is answered: production's choice (int8 where it passed its check), or float32 for a request
    naming its version (as reports, comparisons and the downloaded ONNX file answer)."""
    return loaded.float32 if payload.get("model_id") is not None else loaded.serving


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
    serving = serving_of(loaded, payload)
    probabilities = serving.probabilities(image[None])[0]
    PREDICTIONS.labels(loaded.info["version"], str(int(probabilities.argmax())), serving.precision).inc()
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
    serving = serving_of(loaded, payload)
    if canonical:
        probabilities = serving.probabilities(np.stack(canonical))
    answers = iter(zip(canonical, probabilities if canonical else [], strict=True))
    for position, result in enumerate(results):
        if result is None:
            image, probs = next(answers)
            PREDICTIONS.labels(loaded.info["version"], str(int(probs.argmax())), serving.precision).inc()
            results[position] = {
                "digit": int(probs.argmax()),
                "probabilities": [round(float(p), 6) for p in probs],
                "image": base64.b64encode(image.tobytes()).decode(),
            }
    return {"model": loaded.info, "results": results, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}
