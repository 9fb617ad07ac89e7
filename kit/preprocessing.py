"""The one canonical preprocessing (DESIGN §4), shared by training, fine-tuning, inference and uploaded files
(collector_svc decodes uploaded images with it; ml_svc/preprocessing.py turns its output into model input).

Any PNG/JPEG or pixel array, whatever its background (transparent, white or black),
becomes a 28x28 uint8 image with a white digit on black: the ink is cropped to its
bounding box, its longer side scaled to 20 px keeping the aspect ratio, and pasted
so that its centre of mass sits at the centre, as the original MNIST was made.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from kit.errors import AppError

MAX_SIDE = 2048
# Ink weaker than this (0-255, after removing the background) is noise, not a stroke.
MIN_INK_LEVEL = 40
MIN_INK_PIXELS = 4


class BlankImageError(AppError):
    def __init__(self):
        super().__init__(
            "blank_image",
            "The image is blank: draw a digit before asking for a prediction.",
            status=422,
        )


class PixelBudget:
    """How many pixels one request may have decoded in all: each image is within MAX_SIDE, but 256 of them at
    that size would hold a serving process for tens of seconds."""

    def __init__(self, limit: int):
        self.left = limit
        self.limit = limit

    def spend(self, pixels: int) -> None:
        self.left -= pixels
        if self.left < 0:
            raise WorkBudgetExceeded(self.limit)


class WorkBudgetExceeded(AppError):
    def __init__(self, limit: int):
        super().__init__("too_much_work", f"The images of this request hold more than {limit:,} pixels in all: "
                         "send fewer or smaller ones per request.", status=413)


def decode_image(data: bytes, budget: PixelBudget | None = None) -> np.ndarray:
    """Decode PNG/JPEG bytes into an ink map (float32, 0-255, digit bright on dark); its pixels are spent from
    `budget` before they are decoded."""
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in {"PNG", "JPEG", "MPO"}:  # MPO: what Pillow calls many cameras' JPEGs
            raise AppError("unsupported_image", "Send a PNG or JPEG image.", status=415)
        width, height = image.size
        if width > MAX_SIDE or height > MAX_SIDE:
            raise AppError(
                "image_too_large",
                f"The image is {width}x{height}; the largest accepted side is {MAX_SIDE} px.",
                status=413,
            )
        if budget is not None:
            budget.spend(width * height)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise AppError("invalid_image", "The file is not a readable PNG or JPEG image.") from None
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3]
        if alpha.min() < 250:
            # Transparent background (a browser canvas): the ink is where something was painted.
            return alpha
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    else:
        gray = np.asarray(image.convert("L"), dtype=np.float32)
    return _ink_from_gray(gray)


def pixels_to_ink(pixels) -> np.ndarray:
    """Validate a 28x28 array of 0-255 values and return its ink map."""
    try:
        array = np.asarray(pixels, dtype=np.float32)
    except (ValueError, TypeError):
        raise AppError("invalid_pixels", "pixels must be a 28x28 array of numbers.") from None
    if array.shape != (28, 28):
        raise AppError("invalid_pixels", f"pixels must be 28x28, got shape {list(array.shape)}.")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255:
        raise AppError("invalid_pixels", "pixels must be finite numbers between 0 and 255.")
    return _ink_from_gray(array)


def _border_median(image: np.ndarray) -> float:
    """The median of the outermost pixels (np.median's value, without its overhead on a hot path)."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    half = border.size // 2
    part = np.partition(border, (half - 1, half))
    return float(part[half]) if border.size % 2 else float(part[half - 1 : half + 1].mean())


def _ink_from_gray(gray: np.ndarray) -> np.ndarray:
    background = _border_median(gray)
    ink = 255.0 - gray if background > 127 else gray
    return ink


def canonicalize(ink: np.ndarray) -> np.ndarray:
    """Turn an ink map into the canonical 28x28 uint8 MNIST-style image; refuse blanks."""
    ink = np.clip(ink - _border_median(ink), 0, None)
    peak = float(ink.max())
    if peak < MIN_INK_LEVEL:
        raise BlankImageError()
    strong = ink >= 0.25 * peak
    if int(strong.sum()) < MIN_INK_PIXELS:
        raise BlankImageError()
    rows = np.flatnonzero(strong.any(axis=1))
    cols = np.flatnonzero(strong.any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] * (255.0 / peak)
    height, width = crop.shape
    scale = 20.0 / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8)).resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    patch = np.asarray(resized).astype(np.float32)
    total = patch.sum()
    if total <= 0:
        raise BlankImageError()
    ys, xs = np.indices(patch.shape)
    com_y, com_x = (ys * patch).sum() / total, (xs * patch).sum() / total
    top = min(max(round(13.5 - float(com_y)), 0), 28 - new_h)
    left = min(max(round(13.5 - float(com_x)), 0), 28 - new_w)
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top : top + new_h, left : left + new_w] = patch
    return np.clip(canvas, 0, 255).astype(np.uint8)


def canonical_from_bytes(data: bytes, budget: PixelBudget | None = None) -> np.ndarray:
    return canonicalize(decode_image(data, budget))


def canonical_from_pixels(pixels) -> np.ndarray:
    return canonicalize(pixels_to_ink(pixels))
