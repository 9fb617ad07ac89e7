"""Files people bring: a dataset to collect (the `upload` source) or images to score.

Accepted:
- a ZIP of PNG/JPEG images of any size, in folders `0/` … `9/` naming their digit (one enclosing folder, macOS's
  `__MACOSX/` and dot-files are passed over); each image goes through the canonical preprocessing when its batch
  is read;
- an IDX image/label pair, gzipped or not, as two files or in a ZIP;
- a CSV of `label` and 784 pixel columns (0-255, a header row optional), or gzipped.
For scoring, labels may be left out: images at the top of the ZIP, a CSV of 784 columns, an IDX images file.
IDX and CSV rows are 28x28 already: a dataset keeps them as given (as the built-in MNIST sources do); scoring
canonicalises them as the API does `pixels`.

Everything is checked when the file arrives, before anything is kept, and refused with a 4xx naming the problem:
a size, image count, unpacked size or pixel count over the configured caps, a ZIP that unpacks to many times its
size, unsafe member names (`..`, absolute, drive letters, backslashes), symlinks, encrypted members, folders that
are not digits, files that are not PNG/JPEG, labels outside 0-9, IDX files whose counts differ. What is accepted is
kept under UPLOAD_DIR/<id>/ (written aside, then renamed: visible only when complete) until its run has read it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import stat
import struct
import time
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from collector_svc.sources.idx import GZIP_MAGIC, gunzip, images_and_labels, is_idx, parse_idx
from kit.errors import AppError
from kit.preprocessing import MAX_SIDE, canonical_from_bytes, canonical_from_pixels

PURPOSES = ("dataset", "score")
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
ACCEPTED_FORMATS = {"PNG", "JPEG", "MPO"}  # MPO: what Pillow calls many cameras' JPEGs
DIGIT_FOLDERS = {str(d) for d in range(10)}
UNLABELLED = -1


class Limits(NamedTuple):
    max_bytes: int
    max_images: int
    max_unpacked: int
    max_ratio: int
    max_pixels: int


def limits_for(purpose: str) -> Limits:
    return Limits(settings.UPLOAD_MAX_BYTES,
                  settings.UPLOAD_MAX_IMAGES if purpose == "dataset" else settings.SCORE_MAX_IMAGES,
                  settings.UPLOAD_MAX_UNPACKED_BYTES, settings.UPLOAD_MAX_RATIO, settings.UPLOAD_MAX_PIXELS)


def refused(code: str, message: str, status: int = 400, **details) -> AppError:
    return AppError(code, message, status=status, details=details)


@dataclass
class Parsed:
    """What an accepted upload holds: ZIP members to decode later, or 28x28 arrays; labels are -1 where unknown."""

    format: str
    labels: np.ndarray
    members: list[str] = field(default_factory=list)
    images: np.ndarray | None = None


# Reading the files ---------------------------------------------------------------------------------------------

def parse(files: list[tuple[str, bytes]], *, purpose: str, limits: Limits) -> Parsed:
    if not 1 <= len(files) <= 2:
        raise refused("invalid", "Send one file (a ZIP, a CSV, an IDX file) or the two files of an IDX pair.",
                      files=len(files))
    total = sum(len(data) for _, data in files)
    if total > limits.max_bytes:
        raise refused("too_large", f"The upload is {total:,} bytes; the cap is {limits.max_bytes:,}.", status=413,
                      limit=limits.max_bytes)
    if len(files) == 2:
        return _idx_pair([(name, _unpacked(name, data, limits)) for name, data in files], purpose, limits)
    name, data = files[0]
    if data[:2] == b"PK":
        return _zip(name, data, purpose, limits)
    data = _unpacked(name, data, limits)
    if is_idx(data):
        return _idx_pair([(name, data)], purpose, limits)
    return _csv(name, data, purpose, limits)


def _unpacked(name: str, data: bytes, limits: Limits) -> bytes:
    if data[:2] != GZIP_MAGIC:
        return data
    content = gunzip(data, name=name, limit=limits.max_unpacked, status=400)
    if len(content) > limits.max_ratio * len(data) and len(content) > 1 << 20:
        raise _bomb(name, len(content), len(data), limits)
    if content[:2] == GZIP_MAGIC:
        raise refused("suspicious_archive", f"{name} is gzipped twice: send it gzipped once, or not at all.")
    return content


def _bomb(name: str, unpacked: int, packed: int, limits: Limits) -> AppError:
    return refused("suspicious_archive", f"{name} unpacks to {unpacked:,} bytes from {packed:,} (over "
                   f"{limits.max_ratio}x): refused as a decompression bomb.", ratio_limit=limits.max_ratio)


def _idx_pair(files: list[tuple[str, bytes]], purpose: str, limits: Limits) -> Parsed:
    arrays = [(name, parse_idx(data, name=name, status=400, limit=limits.max_unpacked)) for name, data in files]
    images = [(n, a) for n, a in arrays if a.ndim == 3]
    labels = [(n, a) for n, a in arrays if a.ndim == 1]
    if len(images) != 1 or len(labels) + len(images) != len(arrays):
        raise refused("invalid_idx", "An IDX upload is one images file (N x 28 x 28) and, for a dataset, one labels "
                      f"file (N); got {', '.join(f'{n}: shape {list(a.shape)}' for n, a in arrays)}.")
    (image_name, image_array), = images
    if image_array.shape[1:] != (28, 28):
        raise refused("invalid_idx", f"{image_name} holds {image_array.shape[1]}x{image_array.shape[2]} images; "
                      "28x28 are expected.")
    _check_count(len(image_array), limits)
    if not labels:
        if purpose == "dataset":
            raise refused("labels_missing", f"{image_name} is an images file: a dataset also needs its labels file "
                          "(send both files, or both in one ZIP).")
        return Parsed("idx", np.full(len(image_array), UNLABELLED, dtype=np.int16), images=image_array)
    (label_name, label_array), = labels
    if len(label_array) != len(image_array):
        raise refused("mismatched_idx", f"{image_name} holds {len(image_array):,} images but {label_name} "
                      f"{len(label_array):,} labels.", images=len(image_array), labels=len(label_array))
    bad = np.flatnonzero(label_array > 9)
    if bad.size:
        raise refused("label_out_of_range", f"{label_name}: label {int(label_array[bad[0]])} at position "
                      f"{int(bad[0])} is not a digit 0-9.", position=int(bad[0]))
    images_and_labels(image_array, label_array, name=image_name, status=400)
    return Parsed("idx", label_array.astype(np.int16), images=image_array)


def _check_count(count: int, limits: Limits) -> None:
    if count > limits.max_images:
        raise refused("too_many_images", f"The upload holds {count:,} images; the cap is {limits.max_images:,}.",
                      status=413, limit=limits.max_images)
    if count == 0:
        raise refused("empty", "The upload holds no images.")


def _csv(name: str, data: bytes, purpose: str, limits: Limits) -> Parsed:
    if b"\x00" in data:
        raise refused("invalid_csv", f"{name} holds NUL bytes: it is not a CSV of pixel values.")
    data = data.removeprefix(b"\xef\xbb\xbf")  # the byte-order mark spreadsheets write before UTF-8 text
    if not data.isascii():
        raise refused("invalid_csv", f"{name} is not a ZIP, IDX or CSV file (a CSV holds ASCII digits, commas and "
                      "line breaks only).")
    lines = [line for line in data.decode("ascii").splitlines() if line.strip()]  # blank lines are no rows
    first = lines[0].split(",") if lines else []
    # a header names its columns: `label` (or, to score, `pixel0`) first
    header = bool(first) and first[0].strip().strip('"').lower() in ("label", "pixel0")
    columns = len(first)
    labelled = (first[0].strip().strip('"').lower() == "label") if header else columns == 785
    if columns != 784 + labelled or (header and not labelled and purpose == "dataset"):
        need = "`label` and 784 pixel columns" + (" (or, to score, the 784 pixels alone)" if purpose == "score" else "")
        raise refused("invalid_csv", f"{name}: its first row has {columns} columns; a CSV upload has {need}.",
                      columns=columns)
    if purpose == "dataset" and not labelled:
        raise refused("labels_missing", f"{name} has 784 columns: a dataset needs a `label` column first.")
    _check_count(len(lines) - header, limits)
    try:
        # int32: half the memory of int64 for 70,000 rows; a value past it is refused (OverflowError) as any other
        table = np.loadtxt(lines, delimiter=",", dtype=np.int32, skiprows=int(header), ndmin=2, comments=None)
    except (ValueError, OverflowError) as exc:
        raise refused("invalid_csv", f"{name}: {str(exc).splitlines()[0]} (every value must be a whole number)") from None
    if table.shape[1] != columns:
        raise refused("invalid_csv", f"{name}: rows have {table.shape[1]} columns, not {columns}.")
    labels = table[:, 0] if labelled else np.full(len(table), UNLABELLED)
    pixels = table[:, int(labelled):]
    bad_labels = np.flatnonzero((labels < 0) | (labels > 9)) if labelled else np.array([], dtype=int)
    if bad_labels.size:
        line = int(bad_labels[0]) + 1 + header
        raise refused("label_out_of_range", f"{name}, line {line}: the label {int(labels[bad_labels[0]])} is not a "
                      "digit 0-9.", line=line)
    bad_rows = np.flatnonzero(((pixels < 0) | (pixels > 255)).any(axis=1))
    if bad_rows.size:
        line = int(bad_rows[0]) + 1 + header
        raise refused("invalid_csv", f"{name}, line {line}: a pixel value outside 0-255.", line=line)
    return Parsed("csv", labels.astype(np.int16), images=pixels.astype(np.uint8).reshape(-1, 28, 28))


def _declared_entries(data: bytes) -> int | None:
    """How many entries the ZIP's end record declares (zip64 too), read before its directory is parsed."""
    try:
        end = zipfile._EndRecData(io.BytesIO(data))  # the standard library's own reader of that record
    except (OSError, struct.error, ValueError):
        return None
    return int(end[zipfile._ECD_ENTRIES_TOTAL]) if end else None


def _zip(name: str, data: bytes, purpose: str, limits: Limits) -> Parsed:
    declared = _declared_entries(data)
    if declared is not None and declared > 2 * limits.max_images + 1000:  # folders and passed-over files besides
        raise refused("too_many_images", f"{name} holds {declared:,} entries; the cap is {limits.max_images:,} "
                      "images.", status=413, limit=limits.max_images)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise refused("corrupt_file", f"{name} is not a readable ZIP file.") from None
    members = []
    for info in infos:
        _check_member(info)
        if not info.is_dir() and not _passed_over(info.filename):
            members.append(info)
    _check_count(len(members), limits)
    unpacked, packed = sum(i.file_size for i in members), sum(i.compress_size for i in members)
    if unpacked > limits.max_unpacked:
        raise refused("too_large", f"{name} unpacks to {unpacked:,} bytes; the cap is {limits.max_unpacked:,}.",
                      status=413, limit=limits.max_unpacked)
    if unpacked > limits.max_ratio * max(packed, 1) and unpacked > 1 << 20:
        raise _bomb(name, unpacked, packed, limits)
    if len(members) <= 2:  # perhaps an IDX pair
        contents = [(info.filename, _read_member(archive, info)) for info in members]
        if all(c[:2] == GZIP_MAGIC or is_idx(c) for _, c in contents):
            return _idx_pair([(n, _unpacked(n, c, limits)) for n, c in contents], purpose, limits)
    return _image_folders(archive, members, purpose, limits)


def _check_member(info: zipfile.ZipInfo) -> None:
    member = info.filename
    path = PurePosixPath(member)
    if ("\\" in member or "\x00" in member or member.startswith("/") or ".." in path.parts or not path.parts
            or (len(member) > 1 and member[1] == ":")):
        raise refused("unsafe_name", f"The member {member!r} has an unsafe name (absolute, `..` or a drive).",
                      member=member)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise refused("symlink", f"The member {member!r} is a symbolic link; only plain files are accepted.",
                      member=member)
    if info.flag_bits & 0x1:
        raise refused("encrypted", f"The member {member!r} is encrypted.", member=member)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # bzip2 and LZMA inflate without a bound on what one read makes: only what every zip tool writes is taken
        raise refused("unsupported_compression", f"The member {member!r} is compressed with method "
                      f"{info.compress_type}; send a ZIP of stored or deflated members.", member=member)


def _passed_over(member: str) -> bool:
    parts = PurePosixPath(member).parts
    return parts[0] == "__MACOSX" or parts[-1].startswith(".")


READ_CHUNK = 64 * 1024


def read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, inflated a chunk at a time (a single read would inflate it whole before cutting it to
    its declared size); zipfile stops at the declared size and checks the CRC."""
    chunks = []
    with archive.open(info) as handle:
        while chunk := handle.read(READ_CHUNK):
            chunks.append(chunk)
    return b"".join(chunks)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        return read_bounded(archive, info)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, RuntimeError, zlib.error) as exc:
        raise refused("corrupt_file", f"The member {info.filename!r} cannot be read: {exc}.",
                      member=info.filename) from None


def _image_folders(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], purpose: str, limits: Limits) -> Parsed:
    paths = [PurePosixPath(info.filename).parts for info in members]
    tops = {p[0] for p in paths if len(p) > 1}
    if len(tops) == 1 and all(len(p) > 1 for p in paths) and next(iter(tops)) not in DIGIT_FOLDERS:
        paths = [p[1:] for p in paths]  # one folder around everything: what zipping a folder makes
    labels, pixels = [], 0
    for info, parts in zip(members, paths, strict=True):
        member = info.filename
        if len(parts) > 2 or (len(parts) == 2 and parts[0] not in DIGIT_FOLDERS):
            raise refused("not_digit_folder", f"{member}: images go in folders named 0 to 9 (the digit they show).",
                          member=member)
        if len(parts) == 1 and purpose == "dataset":
            raise refused("labels_missing", f"{member} is not in a folder 0 to 9: a dataset's images go in the "
                          "folder of their digit.", member=member)
        labels.append(int(parts[0]) if len(parts) == 2 else UNLABELLED)
        pixels += _image_pixels(member, _read_member(archive, info))
        if pixels > limits.max_pixels:
            raise refused("too_much_work", f"The images hold more than {limits.max_pixels:,} pixels in all.",
                          status=413, limit=limits.max_pixels)
    return Parsed("zip", np.array(labels, dtype=np.int16), members=[info.filename for info in members])


def _image_pixels(member: str, content: bytes) -> int:
    """An image's pixel count, from its header (nothing decoded); refuses what is not a PNG/JPEG within MAX_SIDE."""
    if not any(content.startswith(magic) for magic in IMAGE_MAGIC):
        raise refused("not_an_image", f"{member} is not a PNG or JPEG image.", member=member)
    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            if image.format not in ACCEPTED_FORMATS:
                raise refused("not_an_image", f"{member} is a {image.format} image; send PNG or JPEG.", member=member)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise refused("not_an_image", f"{member} is not a readable PNG or JPEG image.", member=member) from None
    if width > MAX_SIDE or height > MAX_SIDE:
        raise refused("image_too_large", f"{member} is {width}x{height}; the largest accepted side is {MAX_SIDE} px.",
                      status=413, member=member)
    return width * height


# Keeping and reading back --------------------------------------------------------------------------------------

def display_name(name: str) -> str:
    """A client's file name as it is shown: its last part, printable, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:200] or "upload"


def store(files: list[tuple[str, bytes]], *, purpose: str, uploaded_by: str, name: str) -> dict:
    """Check the files and keep what they hold; the upload's description (collector contract `Upload`)."""
    if purpose not in PURPOSES:
        raise refused("invalid", f"purpose must be one of {', '.join(PURPOSES)}.", purpose=purpose)
    parsed = parse(files, purpose=purpose, limits=limits_for(purpose))
    _forget_old_uploads()
    labelled = parsed.labels >= 0
    upload = {
        "id": uuid.uuid4().hex, "purpose": purpose, "format": parsed.format, "name": name,
        "files": [{"name": display_name(n), "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()} for n, d in files],
        "count": int(len(parsed.labels)), "labelled": int(labelled.sum()),
        "class_counts": {str(d): int(c) for d, c in enumerate(np.bincount(parsed.labels[labelled], minlength=10))},
        "uploaded_by": uploaded_by, "created_at": timezone.now().isoformat(),
    }
    root = Path(settings.UPLOAD_DIR)
    aside = root / f".incoming-{upload['id']}"
    aside.mkdir(parents=True)
    try:
        np.save(aside / "labels.npy", parsed.labels, allow_pickle=False)
        if parsed.format == "zip":
            (aside / "archive.zip").write_bytes(files[0][1])
            (aside / "members.json").write_text(json.dumps(parsed.members))
        else:
            np.save(aside / "images.npy", parsed.images, allow_pickle=False)
        (aside / "upload.json").write_text(json.dumps(upload))
        os.replace(aside, root / upload["id"])
    except BaseException:
        shutil.rmtree(aside, ignore_errors=True)
        raise
    return upload


def _folder(upload_id: str) -> Path:
    folder = Path(settings.UPLOAD_DIR) / upload_id
    if not folder.is_dir():
        raise refused("not_found", f"There is no upload {upload_id} (uploads are kept until read, at most "
                      f"{settings.UPLOAD_KEEP_HOURS} hours).", status=404, upload=upload_id)
    return folder


def describe(upload_id: str) -> dict:
    return json.loads((_folder(upload_id) / "upload.json").read_text())


def forget(upload_id: str) -> None:
    shutil.rmtree(_folder(upload_id), ignore_errors=True)


def _forget_old_uploads() -> None:
    root = Path(settings.UPLOAD_DIR)
    if not root.is_dir():
        return
    cutoff = time.time() - settings.UPLOAD_KEEP_HOURS * 3600
    for folder in root.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:
            pass


BATCH_SECONDS = 3.0  # a batch of large images ends after this much decoding (runs report every batch)


def batch(upload_id: str, *, offset: int, size: int) -> list[dict]:
    """Items [offset, offset+size), or fewer where decoding them takes more than BATCH_SECONDS: each `{"name", "label" (None when not given), "image" (base64 of the 28x28
    canonical uint8 image) or "error" (why it could not be read)}`."""
    folder = _folder(upload_id)
    purpose = describe(upload_id)["purpose"]
    labels = np.load(folder / "labels.npy", allow_pickle=False)
    end = min(offset + size, len(labels))
    if (folder / "archive.zip").exists():
        members = json.loads((folder / "members.json").read_text())[offset:end]
        started, items = time.monotonic(), []
        with zipfile.ZipFile(folder / "archive.zip") as archive:
            for member, label in zip(members, labels[offset:end], strict=True):
                info = archive.getinfo(member)
                items.append(_item(member, lambda i=info: canonical_from_bytes(read_bounded(archive, i)), label))
                if time.monotonic() - started > BATCH_SECONDS:
                    break  # large images: a shorter batch, so that its run reports progress in time
    else:
        images = np.load(folder / "images.npy", mmap_mode="r", allow_pickle=False)
        keep_as_given = purpose == "dataset"
        items = [
            _item(f"row {n + 1}", (lambda i=images[n]: np.array(i)) if keep_as_given
                  else (lambda i=images[n]: canonical_from_pixels(i)), labels[n])
            for n in range(offset, end)
        ]
    return items


def _item(name: str, read, label: int) -> dict:
    item = {"name": name, "label": int(label) if label >= 0 else None}
    try:
        item["image"] = base64.b64encode(np.ascontiguousarray(read(), dtype=np.uint8).tobytes()).decode()
    except AppError as exc:
        item["error"] = exc.message
    except (zipfile.BadZipFile, OSError, zlib.error) as exc:
        item["error"] = f"it cannot be read: {exc}"
    return item
