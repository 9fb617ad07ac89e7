"""Files fetched once from a list of mirrors, verified, and cached.

A download is streamed to a temporary file, its MD5 compared with the official
sum, and only then renamed into the cache: a failed or corrupt download leaves
nothing behind, and there is never a silent fallback to unverified data.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import requests

from kit.errors import AppError

logger = logging.getLogger(__name__)
CHUNK = 1 << 20


class DownloadError(AppError):
    def __init__(self, name: str, reasons: list[str]):
        super().__init__(
            "download_failed",
            f"could not download {name}: " + "; ".join(reasons),
            status=502,
            details={"file": name, "attempts": reasons},
        )


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_verified(name: str, md5: str, *, mirrors: list[str], cache_dir: Path, timeout_s: float) -> Path:
    """The cached file `name`, downloading it from the first mirror that serves the right bytes."""
    target = cache_dir / name
    if target.exists() and md5_of(target) == md5:
        return target
    if not mirrors:
        raise DownloadError(name, ["no mirrors are configured"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    reasons = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}.")
        try:
            digest = hashlib.md5(usedforsecurity=False)
            with os.fdopen(fd, "wb") as handle, requests.get(url, stream=True, timeout=timeout_s) as response:
                if response.status_code != 200:
                    raise OSError(f"HTTP {response.status_code}")
                for chunk in response.iter_content(CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
            if digest.hexdigest() != md5:
                raise OSError(f"checksum mismatch (MD5 {digest.hexdigest()}, expected {md5})")
            os.replace(tmp, target)
            logger.info("downloaded %s from %s", name, url)
            return target
        except requests.Timeout:
            reasons.append(f"{url}: no answer within {timeout_s:g} s")
        except requests.RequestException as exc:
            reasons.append(f"{url}: {exc.__class__.__name__}")
        except OSError as exc:
            reasons.append(f"{url}: {exc}")
        finally:
            Path(tmp).unlink(missing_ok=True)
    raise DownloadError(name, reasons)
