"""The IDX format of MNIST-like data sets: a magic number, the dimensions, then raw uint8 values."""

from __future__ import annotations

import gzip

import numpy as np

from kit.errors import AppError

UINT8_TYPE = 0x08


def parse_idx(data: bytes, *, name: str) -> np.ndarray:
    """Decode one IDX file (gzip-compressed or not) into a uint8 array; refuse anything malformed."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            raise AppError("corrupt_file", f"{name} is not a valid gzip file", status=502) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != UINT8_TYPE:
        raise AppError("corrupt_file", f"{name} is not an IDX file of unsigned bytes", status=502)
    dims = data[3]
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if len(data) != header + int(np.prod(shape)):
        raise AppError("corrupt_file", f"{name}: {len(data) - header} values for shape {shape}", status=502)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def images_and_labels(images: np.ndarray, labels: np.ndarray, *, name: str) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise AppError("corrupt_file", f"{name}: images {images.shape} and labels {labels.shape} do not match", status=502)
    if labels.size and labels.max() > 9:
        raise AppError("corrupt_file", f"{name}: labels must be 0-9", status=502)
    return images, labels
