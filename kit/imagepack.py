"""Bulk transport of labelled 28x28 images: two `.npy` arrays back to back.

Deterministic bytes (unlike `.npz`, whose zip entries carry timestamps), so the
same pixels always have the same SHA-256; never unpickled.
"""

from __future__ import annotations

import io

import numpy as np

CONTENT_TYPE = "application/x-npy-pair"
IMAGE_SHAPE = (28, 28)


class ImagePackError(ValueError):
    """The bytes are not a valid image pack."""


def pack(images: np.ndarray, labels: np.ndarray) -> bytes:
    """Serialise uint8 images (N, 28, 28) and int labels (N,) to bytes."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    _check(images, labels)
    buffer = io.BytesIO()
    np.save(buffer, images, allow_pickle=False)
    np.save(buffer, labels, allow_pickle=False)
    return buffer.getvalue()


def unpack(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse bytes written by `pack`; raises ImagePackError on anything else."""
    buffer = io.BytesIO(data)
    try:
        images = np.load(buffer, allow_pickle=False)
        labels = np.load(buffer, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise ImagePackError(f"not an image pack: {exc}") from None
    if buffer.tell() != len(data):
        raise ImagePackError("trailing bytes after the image pack")
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise ImagePackError("images and labels must be uint8")
    _check(images, labels)
    return images, labels


def _check(images: np.ndarray, labels: np.ndarray) -> None:
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise ImagePackError(f"images must have shape (N, 28, 28), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ImagePackError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    if labels.size and labels.max() > 9:
        raise ImagePackError("labels must be digits 0-9")
