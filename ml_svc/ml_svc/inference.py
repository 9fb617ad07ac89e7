"""Predictions: a request's image made canonical (preprocessing.py) and classified by the model it asks for
(serving.py's cache: production, or a version named by `model_id`), one image or a batch."""

from __future__ import annotations

import base64
import hashlib
import logging
import time

import numpy as np
from django.conf import settings
from numpy import random

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


def bucket(route: str, candidate_id: int) -> float:
    """Where a user falls in [0, 1) for a candidate: the same in every process, so the canary share `s` always
    answers the users below `s` (raising it keeps those it had); another candidate draws its own users."""
    return int.from_bytes(hashlib.sha256(f"{candidate_id}:{route}".encode()).digest()[:8], "big") / 2.0**64


def _route(item: dict) -> str | None:
    route = item.get("route") if isinstance(item, dict) else None
    if route is None:
        return None
    if not isinstance(route, str) or not 0 < len(route) <= 150:
        raise AppError("invalid", "route must be a user name of 1 to 150 characters.")
    return route


def predict_batch(payload: dict) -> dict:
    """Classify up to MAX_BATCH images in one pass; a bad image is reported in its place, not fatal.

    Live traffic (items with a `route`, the user, and no `model_id` for the batch) meets the rollout: a user in the
    candidate's canary share is answered by the candidate (the item's own `model`), and a `shadow_share` of the
    others are also scored by the candidate (`shadow`: its digit and confidence, for the history only), in the same
    pass as production's answers."""
    images = payload.get("images") if isinstance(payload, dict) else None
    if not isinstance(images, list) or not 1 <= len(images) <= MAX_BATCH:
        raise AppError("invalid", f"images must be a list of 1 to {MAX_BATCH} items, each like a /predict body.")
    started = time.perf_counter()
    canonical, results, routes = [], [], []
    budget = PixelBudget(settings.MAX_PIXELS_PER_REQUEST)
    for item in images:
        try:
            route = _route(item)
            canonical.append(canonical_input(item, budget))
            routes.append(route)
            results.append(None)
        except WorkBudgetExceeded:
            raise  # the whole request is refused: its images are too much work together
        except AppError as exc:
            results.append({"error": {"code": exc.code, "message": exc.message, "status": exc.status}})
    if payload.get("model_id") is not None:
        loaded, candidate, share = requested_model(payload), None, 0.0
    else:
        loaded, candidate, share = model_cache().serving()
    serving = serving_of(loaded, payload)
    answers = zip(canonical, _answers(serving, candidate, share, np.stack(canonical) if canonical else None, routes),
                  strict=True)
    for position, result in enumerate(results):
        if result is None:
            image, (probs, by, shadow) = next(answers)
            version = (by or loaded).info
            precision = by.serving.precision if by is not None else serving.precision
            PREDICTIONS.labels(version["version"], str(int(probs.argmax())), precision).inc()
            results[position] = {
                "digit": int(probs.argmax()),
                "probabilities": [round(float(p), 6) for p in probs],
                "image": base64.b64encode(image.tobytes()).decode(),
            }
            if by is not None:
                results[position]["model"] = version
            if shadow is not None:
                results[position]["shadow"] = shadow
    return {"model": loaded.info, "results": results, "latency_ms": round((time.perf_counter() - started) * 1000, 3)}


def _answers(serving, candidate: LoadedModel | None, share: float, images: np.ndarray | None, routes: list):
    """Per image, in order: (probabilities, the candidate if it answered (canary) else None, the candidate's shadow
    answer or None). Production answers its images in one call, the candidate its canary and shadow ones in one."""
    if images is None:
        return iter(())
    count = len(images)
    canary = np.zeros(count, dtype=bool)
    shadowed = np.zeros(count, dtype=bool)
    if candidate is not None:
        live = np.array([route is not None for route in routes])
        if share > 0:  # no hashing on the prediction path while no canary is open
            canary = live & np.array([route is not None and bucket(route, candidate.version_id) < share
                                      for route in routes])
        shadowed = live & ~canary & (random.random_sample(count) < settings.SHADOW_SHARE)
    by_production = ~canary
    probabilities = np.empty((count, 10), dtype=np.float32)
    if by_production.any():
        probabilities[by_production] = serving.probabilities(images[by_production])
    asked = canary | shadowed
    candidate_probabilities = np.empty((count, 10), dtype=np.float32)
    if asked.any():
        candidate_probabilities[asked] = candidate.serving.probabilities(images[asked])
        probabilities[canary] = candidate_probabilities[canary]

    def answer(i: int):
        shadow = None
        if shadowed[i]:
            probs = candidate_probabilities[i]
            shadow = {"model_version_id": candidate.version_id, "digit": int(probs.argmax()),
                      "confidence": round(float(probs.max()), 6)}
        return probabilities[i], candidate if canary[i] else None, shadow

    return (answer(i) for i in range(count))
