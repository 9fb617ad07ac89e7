"""What every data source is: named splits of labelled 28x28 uint8 images."""

from __future__ import annotations

import hashlib
from functools import cached_property

import numpy as np

from kit import imagepack


class Source:
    """A data source. Subclasses set `name`, `description` and implement `load_split`."""

    name = ""
    description = ""
    splits: tuple[str, ...] = ("train",)

    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    @cached_property
    def _arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {split: self.load_split(split) for split in self.splits}

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return self._arrays[split]

    def describe(self) -> dict:
        """Counts per split, class distribution and the SHA-256 of each split's pixels."""
        splits = {}
        for split in self.splits:
            images, labels = self.arrays(split)
            splits[split] = {
                "count": int(len(labels)),
                "class_counts": {str(d): int(c) for d, c in enumerate(np.bincount(labels, minlength=10))},
                "sha256": hashlib.sha256(imagepack.pack(images, labels)).hexdigest(),
            }
        return {"source": self.name, "description": self.description, "splits": splits}
