"""A hyperparameter sweep on the real platform with two ML workers, next to a training with the defaults.

Starts the platform as the end-to-end tests do (PostgreSQL at $DATABASE_URL or 127.0.0.1:5432, every
service, the front and two task-queue workers), collects `mnist-5k` and the official test set (the `mnist` source's
test split, ../shared/datasets/mnist-t10k/), then:

  1. trains the architecture with its default hyperparameters at the sweep's epoch count (the reference);
  2. sweeps learning rate, width, dropout and weight decay (TPE, median pruning) over `--trials` trials, two at once;
  3. evaluates the reference and the sweep's best version on the 10,000 official test digits.

Prints one JSON object: wall times, trials by state, the best held-out accuracy and parameters, and both
versions' official test accuracy, with the CPU it ran on (bench/cpu.py).

    .venv/bin/python bench/sweep_benchmark.py [--trials 16] [--epochs 6] [--architecture cnn]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cpu  # noqa: E402
from tests.e2e.platform import Platform  # noqa: E402
from tests.e2e.support import Api  # noqa: E402

SEARCH_SPACE = {
    "learning_rate": {"low": 0.0005, "high": 0.03, "log": True},
    "width": {"low": 8, "high": 48},
    "dropout": {"low": 0.0, "high": 0.5},
    "weight_decay": {"low": 0.00001, "high": 0.01, "log": True},
}


def started(api: Api, path: str, body: dict) -> int:
    answer = api.post(path, body)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def finished(api: Api, run_id: int, timeout_s: float = 7200) -> dict:
    run = api.wait_for_run(run_id, timeout_s=timeout_s)
    assert run["status"] == "succeeded", run
    return run


def official_accuracy(api: Api, version_id: int, test_dataset: int) -> float:
    run = finished(api, started(api, "/api/scenarios/evaluate", {"model_id": version_id, "dataset_id": test_dataset}))
    return run["result"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--architecture", default="cnn")
    args = parser.parse_args()

    platform = Platform(workdir=Path(tempfile.mkdtemp(prefix="sweep-bench-")),
                        settings={"GATEWAY_RATE_LIMIT_SCENARIOS": "0"})
    platform.start()
    try:
        platform.start_worker("ml_worker_2")
        api = Api(platform.url("gateway"), "engineer", platform.demo_password)
        train_set = finished(api, started(api, "/api/scenarios/collect-and-store",
                                          {"source": "mnist-5k", "batch_size": 5000}))["result"]["dataset_id"]
        test_set = finished(api, started(api, "/api/scenarios/collect-and-store",
                                         {"source": "mnist", "split": "test", "batch_size": 10000}))["result"]["dataset_id"]
        fixed = {"epochs": args.epochs}

        clock = time.perf_counter()
        reference = finished(api, started(api, "/api/scenarios/train-model", {
            "dataset_id": train_set, "architecture": args.architecture, "hyperparameters": fixed}))
        reference_s = time.perf_counter() - clock

        clock = time.perf_counter()
        sweep = finished(api, started(api, "/api/scenarios/sweep", {
            "dataset_id": train_set, "architecture": args.architecture, "search_space": SEARCH_SPACE,
            "trials": args.trials, "max_parallel": 2, "hyperparameters": fixed}))
        sweep_s = time.perf_counter() - clock
        best = sweep["result"]

        print(json.dumps({
            "cpu": cpu.describe(), "architecture": args.architecture, "epochs": args.epochs, "trials": args.trials,
            "workers": 2, "sweep_wall_s": round(sweep_s, 1), "reference_training_s": round(reference_s, 1),
            "sweep_over_one_training": round(sweep_s / reference_s, 2), "trial_states": best["trials"],
            "best_held_out": round(best["best_value"], 4), "best_params": best["best_params"],
            "reference_held_out": round(reference["result"]["accuracy"], 4),
            "best_official_test": official_accuracy(api, best["model_version_id"], test_set),
            "reference_official_test": official_accuracy(api, reference["result"]["model_version_id"], test_set),
        }, indent=2))
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
