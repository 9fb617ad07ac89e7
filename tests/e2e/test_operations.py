"""Operations on the real processes: metrics on every service, and two ML workers sharing the queue."""

from __future__ import annotations

import signal
import time

import requests

from tests.e2e.support import Api, sample_digits


def scrape(platform, service: str, **headers) -> str:
    response = requests.get(platform.url(service) + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, (service, response.status_code)
    return response.text


def counter(text: str, family: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(family + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_every_service_exposes_its_metric_families_and_predictions_are_counted_by_version(platform):
    production = platform.ensure_production_model()
    token = {"X-Service-Token": platform.env["SERVICE_TOKEN"]}
    assert requests.get(platform.url("gateway") + "/metrics", timeout=10).status_code == 401, "the public service guards its metrics"
    texts = {name: scrape(platform, name, **token) for name in ("storage", "collector", "ml", "gateway")}
    for name, text in texts.items():
        assert "http_requests_total{" in text and "http_request_duration_seconds_bucket{" in text, name
    assert "ml_queue_depth " in texts["ml"]
    assert "storage_runs{" in texts["storage"] and "runs_total{" in texts["storage"]
    version = production["version"] if "version" in production else f"v{production['id']}"
    images, labels = sample_digits()
    before = counter(texts["ml"], "predictions_total", model_version=version)
    viewer = Api(platform.url("gateway"), "viewer", platform.demo_password)
    answer = viewer.post("/api/predictions", {"pixels": images[1234].tolist()}).json()
    after_text = scrape(platform, "ml")
    assert counter(after_text, "predictions_total", model_version=version) == before + 1
    assert counter(after_text, "predictions_total", model_version=version, digit=answer["digit"]) >= 1
    gateway_text = scrape(platform, "gateway", **token)
    assert counter(gateway_text, "http_requests_total", endpoint="/api/predictions", status="201") >= 1


def test_two_workers_share_the_queue_and_a_killed_one_fails_only_its_own_run(platform):
    platform.ensure_production_model()
    platform.start_worker("ml_worker_2")
    engineer = Api(platform.url("gateway"), "engineer", platform.demo_password)
    dataset_id = engineer.get("/api/datasets").json()["results"][-1]["id"]
    try:
        runs = [engineer.post("/api/scenarios/train-model", {"dataset_id": dataset_id,
                                                             "hyperparameters": {"epochs": 100, "width": 8}}).json()["id"]
                for _ in range(2)]
        deadline = time.monotonic() + 90
        while not all(engineer.get(f"/api/runs/{r}").json()["status"] == "running" for r in runs):
            assert time.monotonic() < deadline, "both trainings should run at the same time, one per worker"
            time.sleep(0.5)
        platform.stop_service("ml_worker", signal.SIGKILL)
        killed_at = time.monotonic()
        while all(engineer.get(f"/api/runs/{r}").json()["status"] == "running" for r in runs):
            assert time.monotonic() - killed_at < 30, "the dead worker's run must fail within 30 s"
            time.sleep(1)
        states = {r: engineer.get(f"/api/runs/{r}").json() for r in runs}
        failed = [r for r, run in states.items() if run["status"] == "failed"]
        alive = [r for r, run in states.items() if run["status"] == "running"]
        assert len(failed) == 1 and len(alive) == 1, {r: s["status"] for r, s in states.items()}
        progress = states[alive[0]]["progress"]
        time.sleep(4)
        assert engineer.get(f"/api/runs/{alive[0]}").json()["progress"] > progress, "the other worker keeps going"
        assert engineer.post(f"/api/runs/{alive[0]}/cancel").status_code == 200
    finally:
        platform.start_worker("ml_worker")
        platform.stop_service("ml_worker_2")
