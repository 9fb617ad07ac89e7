"""Faults with real processes: storage stops, a weights file is altered on disk."""

from __future__ import annotations

import time

import requests

from tests.e2e.support import Api, sample_digits


def test_with_storage_stopped_the_gateway_answers_503_fast_other_pages_work_and_it_recovers(platform):
    platform.ensure_production_model()
    gateway = platform.url("gateway")
    viewer = Api(gateway, "viewer", platform.demo_password)
    images, _ = sample_digits()
    platform.stop_service("storage")
    stopped_at = time.monotonic()
    try:
        started = time.monotonic()
        history = viewer.get("/api/predictions")
        assert history.status_code == 503 and time.monotonic() - started < 2.0
        assert history.json()["error"]["details"] == {"service": "storage_svc"}
        answer = viewer.post("/api/predictions", {"pixels": images[5].tolist()})
        assert answer.status_code == 503, "an answer that cannot be recorded is not acknowledged"
        assert requests.get(f"{gateway}/login", timeout=5).status_code == 200, "pages that need no storage still work"
        health = requests.get(f"{gateway}/api/health", timeout=10).json()["services"]
        assert health["storage_svc"]["status"] == "unavailable" and health["collector_svc"]["status"] == "ok"
    finally:
        platform.start_service("storage")
        platform.wait_ready("storage")
    back = time.monotonic()
    recovered = viewer.post("/api/predictions", {"pixels": images[5].tolist()})
    assert recovered.status_code == 201, "recovery needs no restart of the other services"
    print(f"storage down: 503 in {(started and history.elapsed.total_seconds()) * 1000:.0f} ms; "
          f"first prediction recorded {time.monotonic() - back:.2f} s after storage was ready again "
          f"({back - stopped_at:.1f} s outage)")


def test_a_weights_file_altered_on_disk_is_refused_and_the_previous_model_keeps_serving(platform):
    production = platform.ensure_production_model()
    gateway = platform.url("gateway")
    engineer = Api(gateway, "engineer", platform.demo_password)
    admin = Api(gateway, "admin", platform.demo_password)
    run = engineer.post("/api/scenarios/train-model", {"dataset_id": production["datasets"][0],
                                                      "hyperparameters": {"epochs": 1, "width": 8}}).json()
    run = engineer.wait_for_run(run["id"])
    tampered = engineer.get(f"/api/models/{run['result']['model_version_id']}").json()
    sha = tampered["weights_sha256"]
    path = platform.workdir / "blobs" / "sha256" / sha[:2] / sha[2:]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert admin.post(f"/api/models/{tampered['id']}/promote",
                      {"reason": "tampered on purpose", "override": True}).status_code == 200
    images, _ = sample_digits()
    time.sleep(2)  # several alias refreshes
    for _ in range(3):
        answer = engineer.post("/api/predictions", {"pixels": images[9].tolist()})
        assert answer.status_code == 201 and answer.json()["model"]["id"] == production["id"]
    assert admin.post(f"/api/models/{production['id']}/promote", {"reason": "back to a sound version"}).status_code == 200
