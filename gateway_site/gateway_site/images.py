"""Render the model's 28x28 input as a PNG data URL for pages."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image


def pixels_png_data_url(pixels_b64: str, scale: int = 5) -> str:
    pixels = np.frombuffer(base64.b64decode(pixels_b64), dtype=np.uint8).reshape(28, 28)
    image = Image.fromarray(pixels, mode="L").resize((28 * scale, 28 * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
