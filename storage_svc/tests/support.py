"""What several of storage's test modules share (fixtures are in conftest.py)."""

import numpy as np

from kit import imagepack


def make_pack(n: int = 20, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return imagepack.pack(images, labels)
