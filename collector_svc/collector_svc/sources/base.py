"""What every data source is: named splits of labelled 28x28 uint8 images."""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from kit import imagepack
from kit.errors import AppError


class Source:
    """A data source. Subclasses set `name`, `description`, `splits` and implement `load_split`."""

    name = ""
    description = ""
    splits: tuple[str, ...] = ("train",)
    # Sources whose content changes (user samples) are read afresh on every request.
    cacheable = True

    def __init__(self):
        self._cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._described: dict[str, dict] = {}
        self._lock = threading.Lock()

    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self.splits:
            raise AppError(
                "unknown_split",
                f"{self.name} has splits {', '.join(self.splits) or '(none available)'}",
                details={"split": split},
            )
        if not self.cacheable:
            return self.load_split(split)
        with self._lock:
            if split not in self._cache:
                self._cache[split] = self.load_split(split)
            return self._cache[split]

    def describe(self) -> dict:
        """Counts per split, class distribution and the SHA-256 of each split's pixels."""
        splits = {}
        for split in self.splits:
            if split in self._described:
                splits[split] = self._described[split]
                continue
            images, labels = self.arrays(split)
            splits[split] = {
                "count": int(len(labels)),
                "class_counts": {str(d): int(c) for d, c in enumerate(np.bincount(labels, minlength=10))},
                "sha256": hashlib.sha256(imagepack.pack(images, labels)).hexdigest(),
            }
            if self.cacheable:  # hashing a whole split is costly; it cannot change while the collector runs
                self._described[split] = splits[split]
        return {"source": self.name, "description": self.description, "splits": splits}
