"""The whole platform as real processes: first start, the engineer's API flow, a service going down."""

from __future__ import annotations

import time

import pytest
import requests

from tests.e2e.support import Api, sample_digits


@pytest.fixture(scope="module")
def gateway(platform):
    return platform.url("gateway")


def test_first_start_trains_and_serves_a_model(platform, gateway):
    serving = platform.ensure_production_model()
    viewer = Api(gateway, "viewer", platform.demo_password)
    engineer = Api(gateway, "engineer", platform.demo_password)
    first = engineer.get("/api/models").json()["results"][-1]
    assert first["created_by"] == "system" and first["metrics"]["accuracy"] > 0.8
    first_move = engineer.get("/api/models/ledger").json()["results"][-1]
    assert (first_move["to_version"], first_move["actor"], first_move["reason"]) == (first["id"], "system", "first model at first start")
    model = serving
    runs = engineer.get("/api/runs", params={"created_by": "system"}).json()["results"]
    assert sorted(r["kind"] for r in runs) == ["collect", "train"] and {r["status"] for r in runs} == {"succeeded"}
    images, labels = sample_digits()
    answer = viewer.post("/api/predictions", {"pixels": images[4321].tolist()})
    assert answer.status_code == 201, answer.text
    assert answer.json()["model"]["id"] == model["id"]
    history = viewer.get("/api/predictions").json()
    assert history["results"][0]["id"] == answer.json()["id"]


def test_an_engineer_collects_trains_promotes_and_predicts_through_the_api(platform, gateway):
    engineer = Api(gateway, "engineer", platform.demo_password)
    admin = Api(gateway, "admin", platform.demo_password)
    collect = engineer.post("/api/scenarios/collect-and-store", {"source": "mnist-5k", "batch_size": 2000})
    assert collect.status_code == 202, collect.text
    collected = engineer.wait_for_run(collect.json()["id"])
    assert collected["status"] == "succeeded", collected["error"]
    dataset = engineer.get(f"/api/datasets/{collected['result']['dataset_id']}").json()
    assert dataset["num_samples"] == 5000 and dataset["class_counts"]["3"] == 500

    train = engineer.post("/api/scenarios/train-model", {"dataset_id": dataset["id"], "architecture": "cnn",
                                                        "hyperparameters": {"epochs": 2, "width": 12}})
    assert train.status_code == 202, train.text
    trained = engineer.wait_for_run(train.json()["id"])
    assert trained["status"] == "succeeded", trained["error"]
    assert [e["epoch"] for e in trained["epochs"]] == [1, 2] and trained["progress"] == 1.0
    version_id = trained["result"]["model_version_id"]

    assert engineer.post(f"/api/models/{version_id}/promote", {"reason": "try"}).status_code == 403
    refused = admin.post(f"/api/models/{version_id}/promote", {"alias": "production", "reason": "newer"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "gate_refused", "no live evidence yet"
    promoted = admin.post(f"/api/models/{version_id}/promote", {"alias": "production", "reason": "newer",
                                                                "override": True})
    assert promoted.status_code == 200, promoted.text
    images, labels = sample_digits()
    deadline = time.monotonic() + 5
    while True:
        answer = engineer.post("/api/predictions", {"pixels": images[123].tolist()}).json()
        if answer["model"]["id"] == version_id or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert answer["model"]["id"] == version_id, "the promotion reaches serving within 5 s"
    listed = engineer.get("/api/predictions", params={"model": version_id}).json()["results"]
    assert listed[0]["id"] == answer["id"] and listed[0]["user"] == "engineer"
    ledger = engineer.get("/api/models/ledger").json()["results"]
    assert ledger[0]["to_version"] == version_id and ledger[0]["actor"] == "admin"


def test_with_ml_svc_stopped_predictions_are_a_quick_503_and_pages_say_so(platform, gateway):
    viewer = Api(gateway, "viewer", platform.demo_password)
    images, _ = sample_digits()
    platform.stop_service("ml")
    started = time.monotonic()
    response = viewer.post("/api/predictions", {"pixels": images[10].tolist()})
    elapsed = time.monotonic() - started
    assert response.status_code == 503 and elapsed < 2.0
    assert response.json()["error"]["details"]["service"] == "ml_svc"
    assert viewer.get("/api/predictions").status_code == 200, "history does not need ml_svc"
    health = requests.get(f"{gateway}/api/health", timeout=10).json()
    assert health["services"]["ml_svc"]["status"] == "unavailable" and health["services"]["storage_svc"]["status"] == "ok"

    session = requests.Session()
    login_page = session.get(f"{gateway}/login", timeout=10)
    token = login_page.cookies["csrftoken"]
    session.post(f"{gateway}/login", data={"username": "viewer", "password": platform.demo_password,
                                           "csrfmiddlewaretoken": token}, headers={"Referer": f"{gateway}/login"}, timeout=10)
    page = session.post(f"{gateway}/recognize", data={"image_data": "data:image/png;base64,iVBORw0KGgo="},
                        headers={"X-CSRFToken": session.cookies["csrftoken"], "HX-Request": "true"}, timeout=10)
    assert page.status_code == 503 and "ml_svc" in page.text

    platform.start_service("ml")
    platform.wait_ready("ml")
    assert viewer.post("/api/predictions", {"pixels": images[10].tolist()}).status_code == 201
