"""The IDX format of MNIST-like data sets: a magic number, the dimensions, then raw uint8 values."""

from __future__ import annotations

import zlib

import numpy as np

from kit.errors import AppError

UINT8_TYPE = 0x08


GZIP_MAGIC = b"\x1f\x8b"


def gunzip(data: bytes, *, name: str, limit: int, status: int = 502) -> bytes:
    """A gzip file's content (all its members, as `cat a.gz b.gz` or pigz make), refused once it grows past
    `limit` bytes (a small file that inflates to gigabytes is never inflated whole); bytes after the last member
    that are not another member are refused."""
    content, rest = b"", data
    while rest:
        if rest[:2] != GZIP_MAGIC:
            raise AppError("corrupt_file", f"{name} has {len(rest):,} bytes after its gzip data", status=status)
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            content += inflater.decompress(rest, limit + 1 - len(content))
        except zlib.error:
            raise AppError("corrupt_file", f"{name} is not a valid gzip file", status=status) from None
        if len(content) > limit or inflater.unconsumed_tail:
            raise AppError("too_large", f"{name} holds more than {limit:,} bytes once decompressed", status=413,
                           details={"file": name, "limit": limit})
        if not inflater.eof:
            raise AppError("corrupt_file", f"{name} is not a valid gzip file (it ends early)", status=status)
        rest = inflater.unused_data
    return content


def is_idx(data: bytes) -> bool:
    return len(data) >= 4 and data[0] == 0 and data[1] == 0 and data[2] == UINT8_TYPE


def parse_idx(data: bytes, *, name: str, status: int = 502, limit: int = 1 << 31) -> np.ndarray:
    """Decode one IDX file (gzip-compressed or not) into a uint8 array; refuse anything malformed. `status` is
    the answer's (502: a remote source's file is bad; 400: a client's upload is)."""
    if data[:2] == GZIP_MAGIC:
        data = gunzip(data, name=name, limit=limit, status=status)
    if not is_idx(data):
        raise AppError("corrupt_file", f"{name} is not an IDX file of unsigned bytes", status=status)
    dims = data[3]
    header = 4 + 4 * dims
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    if not 1 <= dims <= 3 or any(d > 1 << 24 for d in shape):  # labels, or images: nothing else is a digit set
        raise AppError("corrupt_file", f"{name}: an IDX file of shape {shape} holds no digits", status=status)
    if len(data) < header or len(data) != header + int(np.prod(shape, dtype=object)):
        raise AppError("corrupt_file", f"{name}: {max(len(data) - header, 0)} values for shape {shape}", status=status)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def images_and_labels(images: np.ndarray, labels: np.ndarray, *, name: str,
                      status: int = 502) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != (images.shape[0],):
        raise AppError("corrupt_file", f"{name}: images {images.shape} and labels {labels.shape} do not match",
                       status=status)
    if labels.size and labels.max() > 9:
        raise AppError("corrupt_file", f"{name}: labels must be 0-9", status=status)
    return images, labels
