"""Hyperparameter sweeps with real processes and two ML workers: trials run two at a time, a deliberately bad range
is pruned, a worker killed mid-trial fails that trial only, the best version becomes candidate; a cancelled sweep
leaves nothing queued or running."""

from __future__ import annotations

import signal
import time
from datetime import datetime

import pytest

from tests.e2e.support import Api

FINISHED = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def two_workers(platform):
    platform.start_worker("ml_worker_2")
    yield platform
    if "ml_worker_2" in platform.processes:
        platform.stop_service("ml_worker_2")


@pytest.fixture(scope="module")
def engineer(platform):
    return Api(platform.url("gateway"), "engineer", platform.demo_password)


@pytest.fixture(scope="module")
def dataset_id(engineer) -> int:
    collect = engineer.post("/api/scenarios/collect-and-store", {"source": "mnist-5k", "batch_size": 1500,
                                                                "max_samples": 1500})
    assert collect.status_code == 202, collect.text
    run = engineer.wait_for_run(collect.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    return run["result"]["dataset_id"]


def trials_of(engineer: Api, sweep_id: int) -> list[dict]:
    return engineer.get(f"/api/runs?parent_run={sweep_id}&page_size=100").json()["results"]


def wait_until(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    raise TimeoutError(what)


def when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_sweep_spreads_over_two_workers_prunes_a_bad_range_survives_a_killed_worker_and_names_a_candidate(
        two_workers, engineer, dataset_id):
    answer = engineer.post("/api/scenarios/sweep", {
        "dataset_id": dataset_id, "architecture": "cnn", "trials": 6, "max_parallel": 2,
        # the lowest learning rate allowed learns nothing in three epochs: those trials are pruned
        "search_space": {"learning_rate": {"choices": [0.00001, 0.01]}, "width": {"low": 8, "high": 16}},
        "hyperparameters": {"epochs": 3, "batch_size": 32, "augment": False},
    })
    assert answer.status_code == 202, answer.text
    sweep_id = answer.json()["id"]
    assert answer.json()["kind"] == "sweep"

    two_running = wait_until(lambda: [t for t in trials_of(engineer, sweep_id) if t["status"] == "running"]
                             if sum(t["status"] == "running" for t in trials_of(engineer, sweep_id)) == 2 else None,
                             120, "two trials running at once")
    assert {t["parent_run"] for t in two_running} == {sweep_id}
    # the first two trials are past their start (no pruning yet): kill the second worker under one of them
    wait_until(lambda: all(t["epochs"] for t in trials_of(engineer, sweep_id) if t["status"] == "running"), 120,
               "both trials training")
    two_workers.stop_service("ml_worker_2", signal.SIGKILL)

    sweep = engineer.wait_for_run(sweep_id, timeout_s=600)
    assert sweep["status"] == "succeeded", sweep
    trials = trials_of(engineer, sweep_id)
    counts = sweep["result"]["trials"]
    assert len(trials) == counts["total"] == 6 and counts["running"] == 0
    assert counts["failed"] == 1, "the trial under the killed worker, and only it"
    killed = [t for t in trials if t["status"] == "failed"]
    assert len(killed) == 1 and "no word from the ML worker" in killed[0]["error"]
    assert counts["pruned"] >= 1 and counts["complete"] + counts["pruned"] + counts["failed"] == 6
    pruned = [t for t in trials if t["result"].get("pruned")]
    assert any(t["params"]["hyperparameters"]["learning_rate"] == 0.00001 for t in pruned), "the bad range is pruned"
    first, second = sorted(two_running, key=lambda t: t["id"])
    first, second = (next(t for t in trials if t["id"] == run["id"]) for run in (first, second))
    assert when(second["started_at"]) < when(first["finished_at"]), "two trials ran at the same time"

    best = sweep["result"]
    assert best["best_params"]["learning_rate"] == 0.01 and best["best_value"] > 0.8, "1,350 digits, 3 epochs"
    version = engineer.get(f"/api/models/{best['model_version_id']}").json()
    assert "candidate" in version["aliases"]
    assert version["metrics"]["sweep"] == {"run": sweep_id, "trial": best["best_trial"]}
    assert version["metrics"]["accuracy"] == pytest.approx(best["best_value"])
    view = engineer.get(f"/api/runs/{sweep_id}/sweep").json()
    assert sorted(t["state"] for t in view["trials"]).count("pruned") == counts["pruned"]
    assert view["charts"]["history"]["data"] and view["charts"]["parallel"]["data"]


def test_a_cancelled_sweep_leaves_no_trial_queued_or_running(platform, engineer, dataset_id):
    answer = engineer.post("/api/scenarios/sweep", {
        "dataset_id": dataset_id, "architecture": "cnn", "trials": 8, "max_parallel": 2,
        "search_space": {"learning_rate": {"low": 0.001, "high": 0.01, "log": True}},
        "hyperparameters": {"epochs": 30},
    })
    assert answer.status_code == 202, answer.text
    sweep_id = answer.json()["id"]
    wait_until(lambda: any(t["status"] == "running" for t in trials_of(engineer, sweep_id)), 120, "a trial running")
    cancelled = engineer.post(f"/api/runs/{sweep_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    trials = trials_of(engineer, sweep_id)
    assert trials and all(t["status"] in FINISHED for t in trials), [t["status"] for t in trials]
    time.sleep(5)  # no tick starts another trial of a cancelled sweep
    later = trials_of(engineer, sweep_id)
    assert len(later) == len(trials) and all(t["status"] in FINISHED for t in later)


def test_the_sweep_page_follows_its_trials_and_draws_its_charts(page, platform, engineer, dataset_id):
    from tests.e2e.browsing import log_in, shot

    answer = engineer.post("/api/scenarios/sweep", {
        "dataset_id": dataset_id, "architecture": "cnn", "trials": 3, "max_parallel": 1,
        "search_space": {"learning_rate": {"low": 0.003, "high": 0.02, "log": True}, "width": {"low": 8, "high": 12}},
        "hyperparameters": {"epochs": 2, "batch_size": 32, "augment": False},
    })
    assert answer.status_code == 202, answer.text
    sweep_id = answer.json()["id"]
    base = platform.url("gateway")
    log_in(page, base, "engineer", platform.demo_password)
    page.goto(f"{base}/runs")
    page.get_by_role("link", name=str(sweep_id), exact=True).first.click()
    page.wait_for_url(f"{base}/runs/{sweep_id}")
    page.locator("table.trials tbody tr td:first-child a").first.wait_for(timeout=120_000)
    rows_while_running = page.locator("table.trials tbody tr").count()
    ended = engineer.wait_for_run(sweep_id, timeout_s=300)
    assert ended["status"] == "succeeded", ended
    page.locator(".run-panel .status-succeeded").wait_for(timeout=30_000)  # the page follows the sweep by itself
    assert rows_while_running < 3 == page.locator("table.trials tbody tr").count()
    assert page.locator("section.sweep").get_by_text("best held-out accuracy").count() == 1
    charts = ["sweep-history", "sweep-parallel"] + (["sweep-importances"] if ended["result"]["trials"]["complete"] >= 2
                                                    else [])
    for chart in charts:
        page.locator(f'[data-chart="{chart}"] .main-svg').first.wait_for()
    shot(page, "sweep")
    assert page.console_errors == [] and page.outside_requests == []
