"""MNIST-like sources in IDX files: from a local directory, or downloaded once and verified."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from collector_svc.sources.base import Source
from collector_svc.sources.downloads import fetch_verified, md5_of
from collector_svc.sources.idx import images_and_labels, parse_idx
from kit.errors import AppError


@dataclass(frozen=True)
class IdxFile:
    """One official file: its MD5 as published (compressed), and, where known, the SHA-256 of its content."""

    name: str
    gz_md5: str
    content_sha256: str = ""


class IdxSource(Source):
    """Splits made of an images file and a labels file. Subclasses declare FILES and their settings keys."""

    files: dict[str, tuple[IdxFile, IdxFile]] = {}
    local_dir_setting = ""
    mirrors_setting = ""

    @property
    def local_dir(self) -> Path | None:
        value = str(getattr(settings, self.local_dir_setting, "") or "")
        return Path(value) if value else None

    @property
    def mirrors(self) -> list[str]:
        return [m.strip() for m in str(getattr(settings, self.mirrors_setting, "")).split(",") if m.strip()]

    @property
    def splits(self) -> tuple[str, ...]:
        """Every split when mirrors are configured; else those whose files are in the local directory."""
        if self.mirrors:
            return tuple(self.files)
        return tuple(split for split, pair in self.files.items() if all(self._local_path(f) for f in pair))

    def _local_path(self, file: IdxFile) -> Path | None:
        if self.local_dir is None:
            return None
        for candidate in (self.local_dir / file.name, self.local_dir / file.name.removesuffix(".gz")):
            if candidate.is_file():
                return candidate
        return None

    def _read(self, file: IdxFile) -> np.ndarray:
        local = self._local_path(file)
        if local is not None:
            data = local.read_bytes()
            self._verify_local(file, local, data)
        else:
            path = fetch_verified(
                file.name, file.gz_md5, mirrors=self.mirrors,
                cache_dir=Path(settings.DOWNLOAD_CACHE_DIR) / self.name, timeout_s=settings.DOWNLOAD_TIMEOUT_S,
            )
            data = path.read_bytes()
        return parse_idx(data, name=file.name)

    def _verify_local(self, file: IdxFile, path: Path, data: bytes) -> None:
        if path.suffix == ".gz" and md5_of(path) == file.gz_md5:
            return
        if file.content_sha256:
            content = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            if hashlib.sha256(content).hexdigest() == file.content_sha256:
                return
        raise AppError(
            "checksum_mismatch",
            f"{path} does not match the official {self.name} file {file.name}",
            status=502,
            details={"file": str(path)},
        )

    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        images_file, labels_file = self.files[split]
        return images_and_labels(self._read(images_file), self._read(labels_file), name=f"{self.name}/{split}")


class MnistSource(IdxSource):
    name = "mnist"
    description = "the full MNIST: 60,000 training and 10,000 test digits (local IDX directory or verified download)"
    local_dir_setting = "MNIST_DIR"
    mirrors_setting = "MNIST_MIRRORS"
    files = {
        "train": (
            IdxFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            IdxFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ),
        "test": (
            IdxFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
            IdxFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
        ),
    }


class FashionMnistSource(IdxSource):
    name = "fashion-mnist"
    description = "Fashion-MNIST: 60,000 + 10,000 clothing images (Debian's dataset-fashion-mnist or verified download)"
    local_dir_setting = "FASHION_MNIST_DIR"
    mirrors_setting = "FASHION_MNIST_MIRRORS"
    files = {
        "train": (
            IdxFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
            IdxFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        ),
        "test": (
            IdxFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
            IdxFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        ),
    }
