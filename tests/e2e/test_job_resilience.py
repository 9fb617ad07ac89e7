"""A training outlives a storage_svc restart; when storage stays away too long, the run ends failed with a
reason a person can act on, never `running` or `queued` for good."""

from __future__ import annotations

import signal
import time

import pytest

from tests.e2e.platform import Platform
from tests.e2e.support import Api

# The worker tries to reach storage for 4 s to record an outcome; a run silent for 10 s is given up.
SETTINGS = {"ML_STORAGE_RETRY_WINDOW_S": "4", "STORAGE_RUN_HEARTBEAT_TIMEOUT_S": "10"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    running = Platform(workdir=tmp_path_factory.mktemp("resilience"), settings=SETTINGS)
    try:
        running.start()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def engineer(platform):
    return Api(platform.url("gateway"), "engineer", platform.demo_password)


@pytest.fixture(scope="module")
def dataset_id(engineer):
    run = engineer.post("/api/scenarios/collect-and-store", {"source": "mnist-5k", "batch_size": 1000, "max_samples": 2000})
    finished = engineer.wait_for_run(run.json()["id"], timeout_s=60)
    assert finished["status"] == "succeeded", finished
    return finished["result"]["dataset_id"]


def start_training(engineer, dataset_id: int, budget_s: int) -> int:
    response = engineer.post("/api/scenarios/train-model", {
        "dataset_id": dataset_id, "architecture": "cnn", "hyperparameters": {"time_budget_s": budget_s, "width": 8}})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_until_trained_a_while(engineer, run_id: int, epochs: int) -> bool:
    """True once the run has recorded `epochs` epochs and is still running; False if it ended before."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = engineer.get(f"/api/runs/{run_id}").json()
        if run["status"] not in ("running", "queued"):
            return False
        if len(run["epochs"]) >= epochs:
            return True
        time.sleep(0.3)
    raise TimeoutError(f"run {run_id} did not reach epoch {epochs}")


def training_under_way(engineer, dataset_id: int, budget_s: int, epochs: int) -> int:
    """A time-budgeted training, running, with `epochs` epochs recorded. Its plan is sized from the pace of its
    first steps: one that starts while the machine is still busy with a test before may plan too few epochs to be
    caught running, so up to three are started."""
    for _ in range(3):
        run_id = start_training(engineer, dataset_id, budget_s=budget_s)
        if wait_until_trained_a_while(engineer, run_id, epochs):
            return run_id
    raise AssertionError(f"three trainings of {budget_s} s each ended before their epoch {epochs}")


def storage_away(platform: Platform, seconds: float) -> None:
    platform.stop_service("storage", signal.SIGKILL)
    time.sleep(seconds)
    platform.start_service("storage")
    platform.wait_ready("storage")


def test_a_training_outlives_a_three_second_storage_outage(platform, engineer, dataset_id):
    run_id = training_under_way(engineer, dataset_id, budget_s=20, epochs=2)
    storage_away(platform, 3)
    finished = engineer.wait_for_run(run_id, timeout_s=90)
    assert finished["status"] == "succeeded", finished
    numbers = [epoch["epoch"] for epoch in finished["epochs"]]
    assert numbers == list(range(1, len(numbers) + 1)), "progress resumed with every epoch, none lost or repeated"
    assert engineer.get(f"/api/models/{finished['result']['model_version_id']}").status_code == 200


def test_a_run_whose_storage_stays_away_ends_failed_with_a_reason(platform, engineer, dataset_id):
    run_id = training_under_way(engineer, dataset_id, budget_s=8, epochs=1)
    # away past the training's end, the worker's 4 s window and the 10 s a silent run is given
    storage_away(platform, 22)
    run = engineer.wait_for_run(run_id, timeout_s=30)
    assert run["status"] == "failed"
    assert "no word from the ML worker" in run["error"] and "Start the run again" in run["error"]
    assert engineer.get("/api/runs", params={"status": "running"}).json()["count"] == 0
