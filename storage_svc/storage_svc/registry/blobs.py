"""Content-addressed files: `sha256/ab/cdef…`, written to a temp file, fsynced, renamed."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings

from kit.errors import AppError


class BlobCorrupted(AppError):
    def __init__(self, sha256: str):
        super().__init__(
            "blob_corrupted",
            f"blob {sha256} does not match its hash on disk",
            status=500,
            details={"sha256": sha256},
        )


def blob_path(sha256: str) -> Path:
    return Path(settings.BLOB_DIR) / "sha256" / sha256[:2] / sha256[2:]


def write_blob_file(data: bytes) -> str:
    """Write `data` under its SHA-256 (atomically; a no-op if present) and return the hash."""
    sha256 = hashlib.sha256(data).hexdigest()
    path = blob_path(sha256)
    if path.exists():
        return sha256
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256


def read_blob_file(sha256: str) -> bytes:
    """The blob's bytes, verified against its hash."""
    data = blob_path(sha256).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BlobCorrupted(sha256)
    return data
