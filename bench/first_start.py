"""The first minute as a newcomer meets it, on `make run`'s defaults (scripts/run_local.py, Procfile, PostgreSQL):

- time from start to the first prediction answered through the gateway;
- the first model's accuracy on the official 10,000-digit MNIST test set (../shared/datasets/mnist-t10k),
  scored through POST /api/predictions/batch;
- with --train-budget S: a training through the API with {"time_budget_s": S} (and --hp), how long its run
  took, and the new version's official test accuracy (predictions naming its model_id).

The CPU (lscpu's model name, AVX-512 and bfloat16 flags) is printed with the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from tests.e2e.platform import DefaultRun  # noqa: E402

MNIST_TEST = ROOT.parent / "shared" / "datasets" / "mnist-t10k"


def official_test_set() -> tuple[np.ndarray, np.ndarray]:
    def idx(name: str) -> np.ndarray:
        data = gzip.decompress((MNIST_TEST / name).read_bytes())
        return np.frombuffer(data, np.uint8, offset=16 if name.startswith("t10k-images") else 8)

    return idx("t10k-images-idx3-ubyte.gz").reshape(-1, 28, 28), idx("t10k-labels-idx1-ubyte.gz")


def official_accuracy(gateway: str, headers: dict, model_id: int | None = None) -> float:
    images, labels = official_test_set()
    predicted = []
    for start in range(0, len(labels), 256):
        items = [{"pixels": image.tolist(), **({"model_id": model_id} if model_id else {})} for image in images[start:start + 256]]
        answer = requests.post(f"{gateway}/api/predictions/batch", json={"images": items}, headers=headers, timeout=120)
        answer.raise_for_status()
        predicted += [result["digit"] for result in answer.json()["results"]]
    return float((np.array(predicted) == labels).mean())


def train_within(gateway: str, password: str, budget_s: int, hp: dict) -> None:
    token = requests.post(f"{gateway}/api/auth/token", json={"username": "engineer", "password": password}, timeout=10)
    headers = {"Authorization": f"Token {token.json()['token']}"}
    dataset_id = requests.get(f"{gateway}/api/datasets", headers=headers, timeout=10).json()["results"][-1]["id"]
    asked = time.perf_counter()
    run = requests.post(f"{gateway}/api/scenarios/train-model", headers=headers, timeout=10,
                        json={"dataset_id": dataset_id, "hyperparameters": {**hp, "time_budget_s": budget_s}}).json()
    while (run := requests.get(f"{gateway}/api/runs/{run['id']}", headers=headers, timeout=10).json())["status"] in ("queued", "running"):
        time.sleep(0.5)
    waited = time.perf_counter() - asked
    assert run["status"] == "succeeded", run
    took = (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
    version = requests.get(f"{gateway}/api/models/{run['result']['model_version_id']}", headers=headers, timeout=10).json()
    print(f"training with time_budget_s {budget_s} {json.dumps(hp)}: run took {took:.1f} s ({waited:.1f} s from the "
          f"request to the answer); {version['hyperparameters']['epochs']} epochs, width {version['hyperparameters'].get('width')}, "
          f"batch {version['hyperparameters']['batch_size']}; held-out {version['metrics']['accuracy']:.4f}; "
          f"official test {official_accuracy(gateway, headers, version['id']):.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first-budget", type=int, default=None, help="ml.first_model_time_budget_s (default: config)")
    parser.add_argument("--train-budget", type=int, action="append", default=[], help="also train within S seconds")
    parser.add_argument("--hp", default="{}", help="more hyperparameters for --train-budget, as JSON")
    args = parser.parse_args()
    print(f"CPU: {cpu.describe()}", flush=True)
    settings = {"ML_FIRST_MODEL_TIME_BUDGET_S": str(args.first_budget)} if args.first_budget else {}
    run = DefaultRun(Path(tempfile.mkdtemp(prefix="bench-first-start-")) / "var", settings=settings)
    started = time.monotonic()
    try:
        headers, answered = run.wait_for_first_prediction()
        first = requests.get(f"{run.gateway}/api/models", headers=headers, timeout=10).json()["results"][-1]
        print(f"first prediction {answered - started:.1f} s after start; first model {first['architecture']} width "
              f"{first['hyperparameters'].get('width')}, {first['hyperparameters']['epochs']} epochs, batch "
              f"{first['hyperparameters']['batch_size']}, trained in {first['metrics']['train_seconds']:.1f} s; held-out "
              f"{first['metrics']['accuracy']:.4f}; official test {official_accuracy(run.gateway, headers):.4f}", flush=True)
        for budget in args.train_budget:
            train_within(run.gateway, run.password, budget, json.loads(args.hp))
    finally:
        run.stop()


if __name__ == "__main__":
    main()
