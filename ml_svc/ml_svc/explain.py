"""Why a version gave its answer: an attribution map of the answered class over the 28x28 input, on demand.

Integrated gradients (Sundararajan et al., 2017): the input's difference from a blank canvas, times the gradient of
the answered class's probability averaged along the straight path from the blank canvas to the input (STEPS
midpoints, in one batch). By construction the attributions add up to the probability the input has over the blank
canvas (`completeness`), which the answer reports as a check. Positive pixels pushed the model towards its answer,
negative ones away. It runs the version's float32 torch network (as evaluations do), never on the prediction path:
only a request that asks for it pays, and each answer is remembered per version and image.

Captum implements the same method; it is not used because importing it imports matplotlib, a large dependency for
these few lines, which the tests hold to the method's axiom and to a deletion test of faithfulness.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging

import numpy as np
import torch
from PIL import Image

from kit.errors import AppError
from ml_svc.nearest import nearest
from ml_svc.preprocessing import to_model_input
from ml_svc.remembered import Remembered
from ml_svc.serving import model_cache

STEPS = 64
SCALE = 8  # the overlay's pixels per input pixel
KEPT = 256  # explanations remembered per process
_kept: Remembered[tuple[int, int, str, bool], dict] = Remembered(KEPT)
logger = logging.getLogger(__name__)



def integrated_gradients(module: torch.nn.Module, image: np.ndarray, target: int, steps: int = STEPS) -> tuple[np.ndarray, float]:
    """(the 28x28 attribution of class `target` for a canonical uint8 image, the probability it explains: the
    input's minus the blank canvas's)."""
    module.eval()
    x, blank = to_model_input(image[None]), to_model_input(np.zeros((1, 28, 28), np.uint8))
    alphas = ((torch.arange(steps, dtype=torch.float32) + 0.5) / steps)[:, None, None, None]
    path = (blank + alphas * (x - blank)).requires_grad_(True)
    probability = torch.softmax(module(path), dim=1)[:, target]
    (gradients,) = torch.autograd.grad(probability.sum(), path)
    attribution = ((x - blank) * gradients.mean(dim=0, keepdim=True))[0, 0].detach().numpy()
    with torch.no_grad():
        ends = torch.softmax(module(torch.cat([blank, x])), dim=1)[:, target]
    return attribution.astype(np.float32), float(ends[1] - ends[0])


def overlay_png(image: np.ndarray, attribution: np.ndarray) -> bytes:
    """The input in grey with the attribution over it: red where a pixel pushed towards the answer, blue where it
    pushed away, stronger where it pushed more; SCALE pixels per input pixel."""
    peak = float(np.abs(attribution).max()) or 1.0
    strength = np.clip(np.abs(attribution) / peak, 0.0, 1.0)
    grey = image.astype(np.float32) * 0.55
    red = np.where(attribution > 0, grey + (255 - grey) * strength, grey * (1 - strength))
    blue = np.where(attribution < 0, grey + (255 - grey) * strength, grey * (1 - strength))
    green = grey * (1 - strength)
    rgb = np.stack([red, green, blue], axis=-1).round().astype(np.uint8)
    picture = Image.fromarray(rgb, "RGB").resize((28 * SCALE, 28 * SCALE), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def explain(*, image_b64: str, model_id: int, target: int | None = None, with_nearest: bool = True) -> dict:
    """The attribution of `target` (default: the version's answer) for a canonical 28x28 image (base64 of its 784
    bytes, as every prediction answers `image`), by version `model_id`, and (`with_nearest`) its nearest training
    digits: None where the version has no index, or where reading it failed (that answer is not remembered)."""
    try:
        raw = base64.b64decode(image_b64, validate=True)
    except (ValueError, TypeError):
        raise AppError("invalid", "image must be the base64 of 784 bytes (a prediction's `image`).") from None
    if len(raw) != 784:
        raise AppError("invalid", "image must be the base64 of 784 bytes (a prediction's `image`).",
                       details={"image": f"{len(raw)} bytes"})
    if target is not None and (isinstance(target, bool) or not isinstance(target, int) or not 0 <= target <= 9):
        raise AppError("invalid", "target must be a digit 0-9.", details={"target": "not a digit"})
    key = (model_id, -1 if target is None else target, hashlib.sha256(raw).hexdigest(), with_nearest)
    remembered = _kept.get(key)
    if remembered is not None:
        return remembered
    loaded = model_cache().version(model_id)
    image = np.frombuffer(raw, np.uint8).reshape(28, 28)
    with torch.no_grad():
        probabilities = torch.softmax(loaded.module.eval()(to_model_input(image[None])), dim=1)[0].numpy()
    answer = int(probabilities.argmax())
    target = answer if target is None else target
    attribution, explained = integrated_gradients(loaded.module, image, target)
    result = {
        "model": loaded.info, "target": target, "digit": answer, "probability": round(float(probabilities[target]), 6),
        "method": "integrated_gradients", "steps": STEPS,
        "attribution": [[round(float(v), 6) for v in row] for row in attribution],
        "completeness": {"sum": round(float(attribution.sum()), 6), "explained": round(explained, 6)},
        "overlay_png": base64.b64encode(overlay_png(image, attribution)).decode(),
        "nearest": None,
    }
    whole = True
    if with_nearest:
        try:
            result["nearest"] = nearest(loaded.module, loaded.version, image)
        except AppError as exc:  # the attribution stands on its own; the examples are asked for again next time
            logger.warning("v%s: no nearest examples: %s", model_id, exc.message)
            whole = False
    return _kept.put(key, result) if whole else result
