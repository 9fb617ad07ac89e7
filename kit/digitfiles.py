"""The files digits travel in, written from arrays: the MNIST IDX format, a CSV of `label` and 784 pixels, a ZIP of
PNG images in folders `0/` … `9/`. Datasets are downloaded in them (gateway_site/scenarios/downloads.py), uploads
arrive in them (collector_svc/sources/uploads.py reads them), and the tests and benchmarks make them here."""

from __future__ import annotations

import gzip
import io
import stat
import zipfile
from collections.abc import Iterator

import numpy as np
from PIL import Image

ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed, so the same content is always the same bytes
CSV_ROWS_AT_ONCE = 1000


def idx_file(array: np.ndarray, *, gz: bool = True) -> bytes:
    """One IDX file of unsigned bytes, gzipped as MNIST's are unless `gz` is false."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    content = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return gzip.compress(content, mtime=0) if gz else content


def csv_lines(images: np.ndarray, labels: np.ndarray | None) -> Iterator[str]:
    """A header, then one row per image (`label` first where labels are given), a block of rows at a time."""
    yield ",".join((["label"] if labels is not None else []) + [f"pixel{i}" for i in range(784)]) + "\n"
    for start in range(0, len(images), CSV_ROWS_AT_ONCE):  # never the whole set widened at once
        rows = images[start:start + CSV_ROWS_AT_ONCE].reshape(-1, 784)
        if labels is not None:
            rows = np.column_stack([labels[start:start + CSV_ROWS_AT_ONCE], rows])
        text = io.StringIO()
        np.savetxt(text, rows, fmt="%d", delimiter=",")
        yield text.getvalue()


def zip_of(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), data, compress_type=compression)
    return buffer.getvalue()


def symlink_zip(member: str, target: str) -> bytes:
    """A ZIP whose one member is a symbolic link to `target`: what an upload must never be (tests make it here)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(member, ZIP_TIME)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, target)
    return buffer.getvalue()


def png(image: np.ndarray, *, size: int = 28, dark_on_light: bool = False) -> bytes:
    """A 28x28 white-on-black digit as a PNG, scaled to `size` px, as ink on paper if `dark_on_light`."""
    pixels = 255 - image if dark_on_light else image
    picture = Image.fromarray(np.asarray(pixels, dtype=np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def image_folders_zip(images: np.ndarray, labels: np.ndarray | None, *, size: int = 28, folder: str = "") -> bytes:
    """A ZIP of PNG images, in the folder of their digit (at the top where `labels` is None), inside `folder`."""
    prefix = f"{folder}/" if folder else ""
    members = {}
    for n, image in enumerate(images):
        where = f"{int(labels[n])}/" if labels is not None else ""
        members[f"{prefix}{where}digit-{n:05d}.png"] = png(image, size=size, dark_on_light=n % 2 == 1)
    return zip_of(members)
