"""Fine-tune from production on accepted samples, compare, promote, roll back; a worker dying mid-training."""

from __future__ import annotations

import signal
import time

from tests.e2e.support import Api, sample_digits


def served_version(viewer: Api, pixels, expected: int, within_s: float = 5.0) -> int:
    deadline = time.monotonic() + within_s
    while True:
        model = viewer.post("/api/predictions", {"pixels": pixels}).json()["model"]["id"]
        if model == expected or time.monotonic() > deadline:
            return model
        time.sleep(0.25)


def test_fine_tune_compare_promote_and_roll_back(platform):
    production = platform.ensure_production_model()
    gateway = platform.url("gateway")
    viewer = Api(gateway, "viewer", platform.demo_password)
    engineer = Api(gateway, "engineer", platform.demo_password)
    admin = Api(gateway, "admin", platform.demo_password)
    images, labels = sample_digits()
    for i in range(4000, 4020):
        sample = viewer.post("/api/samples", {"label": int(labels[i]), "pixels": images[i].tolist()})
        assert sample.status_code == 201, sample.text
        assert engineer.post(f"/api/samples/{sample.json()['id']}/review", {"decision": "accept"}).status_code == 200

    started = engineer.post("/api/scenarios/fine-tune", {"base_model_id": production["id"], "hyperparameters": {"epochs": 1}})
    assert started.status_code == 202, started.text
    run = engineer.wait_for_run(started.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    candidate = engineer.get(f"/api/models/{run['result']['model_version_id']}").json()
    assert candidate["aliases"] == ["candidate"] and candidate["base_version"] == production["id"]
    assert candidate["metrics"]["comparison"]["against"]["id"] == production["id"]
    compared = viewer.get(f"/api/models/{candidate['id']}/compare", params={"with": production["id"]}).json()
    assert compared["evaluated_on"] == candidate["metrics"]["evaluated_on"]
    assert set(compared["per_class"]) == {str(d) for d in range(10)} and "fixed" in compared and "broken" in compared

    pixels = images[77].tolist()
    promoted = admin.post(f"/api/models/{candidate['id']}/promote", {"reason": "better on user digits", "override": True})
    assert promoted.status_code == 200, promoted.text
    assert served_version(viewer, pixels, candidate["id"]) == candidate["id"], "serving within 5 s of a promotion"
    assert admin.post(f"/api/models/{production['id']}/promote", {"reason": "rollback"}).status_code == 200
    assert served_version(viewer, pixels, production["id"]) == production["id"]

    ledger = engineer.get("/api/models/ledger").json()["results"][:3]
    assert [(e["alias"], e["to_version"], e["actor"]) for e in ledger] == [
        ("production", production["id"], "admin"),
        ("production", candidate["id"], "admin"),
        ("candidate", candidate["id"], "engineer"),
    ]
    assert [e["from_version"] for e in ledger[:2]] == [candidate["id"], production["id"]]
    assert [e["reason"] for e in ledger[:2]] == ["rollback", "better on user digits"]
    assert [e["action"] for e in ledger[:2]] == ["move", "override"], "a rollback to a version that served is not gated"


def test_a_worker_killed_mid_training_fails_only_its_run_and_leaves_nothing(platform):
    platform.ensure_production_model()
    engineer = Api(platform.url("gateway"), "engineer", platform.demo_password)
    dataset_id = engineer.get("/api/datasets").json()["results"][-1]["id"]
    versions_before = engineer.get("/api/models").json()["count"]
    blobs = platform.workdir / "blobs"
    blobs_before = sorted(p.name for p in blobs.rglob("*") if p.is_file())
    started = engineer.post("/api/scenarios/train-model", {"dataset_id": dataset_id, "hyperparameters": {"epochs": 200}})
    run_id = started.json()["id"]
    deadline = time.monotonic() + 60
    while engineer.get(f"/api/runs/{run_id}").json()["progress"] <= 0.05:
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.5)
    platform.stop_service("ml_worker", signal.SIGKILL)
    killed_at = time.monotonic()
    try:
        while (run := engineer.get(f"/api/runs/{run_id}").json())["status"] == "running":
            assert time.monotonic() - killed_at < 30, "a dead worker's run must fail within 30 s"
            time.sleep(1)
        assert run["status"] == "failed" and "no word from the ML worker" in run["error"]
        print(f"killed worker's run failed {time.monotonic() - killed_at:.1f} s after the kill")
        assert engineer.get("/api/models").json()["count"] == versions_before
        assert sorted(p.name for p in blobs.rglob("*") if p.is_file()) == blobs_before, "no orphan blob"
    finally:
        platform.start_worker()
