"""Data through the real processes: three sources into immutable datasets, and a correction into a user dataset."""

from __future__ import annotations

import pytest

from tests.e2e.support import Api, sample_digits


@pytest.fixture(scope="module")
def engineer(platform):
    return Api(platform.url("gateway"), "engineer", platform.demo_password)


def collect(engineer: Api, **params) -> dict:
    response = engineer.post("/api/scenarios/collect-and-store", params)
    assert response.status_code == 202, response.text
    run = engineer.wait_for_run(response.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    return engineer.get(f"/api/datasets/{run['result']['dataset_id']}").json()


def test_mnist_from_a_local_idx_directory_and_fashion_mnist_become_datasets(engineer):
    mnist = collect(engineer, source="mnist", split="test", batch_size=2500)
    assert mnist["num_samples"] == 10000 and mnist["class_counts"]["1"] == 1135 and len(mnist["sha256"]) == 64
    assert "validation" not in mnist["meta"], "a test split records no train/validation split"
    assert mnist["meta"]["lineage"]["source"] == "mnist" and mnist["meta"]["lineage"]["of"] == 10000
    assert mnist["meta"]["lineage"]["source_sha256"] == mnist["sha256"], "the whole split: same pixels, same hash"
    fashion = collect(engineer, source="fashion-mnist", split="test", batch_size=5000)
    assert fashion["num_samples"] == 10000 and set(fashion["class_counts"].values()) == {1000}
    mnist5k = collect(engineer, source="mnist-5k", batch_size=1000)
    assert mnist5k["meta"]["validation"] == {"fraction": 0.1, "seed": 0, "train": 4500, "validation": 500}
    sources = {s["source"]: s["splits"] for s in engineer.get("/api/sources").json()["sources"]}
    assert sources["mnist"] == ["test"] and sources["fashion-mnist"] == ["train", "test"]


def test_an_unknown_source_or_split_is_refused_before_anything_runs(engineer):
    before = engineer.get("/api/runs").json()["count"]
    assert engineer.post("/api/scenarios/collect-and-store", {"source": "imagenet"}).status_code == 404
    assert engineer.post("/api/scenarios/collect-and-store", {"source": "mnist", "split": "train"}).status_code == 400
    assert engineer.post("/api/scenarios/collect-and-store", {"source": "mnist-5k", "batch_size": 0}).status_code == 400
    assert engineer.get("/api/runs").json()["count"] == before


def test_a_correction_is_reviewed_and_lands_in_a_user_dataset(platform, engineer):
    platform.ensure_production_model()
    viewer = Api(platform.url("gateway"), "viewer", platform.demo_password)
    images, _ = sample_digits()
    prediction = viewer.post("/api/predictions", {"pixels": images[2222].tolist()}).json()
    wrong_label = (prediction["digit"] + 1) % 10
    assert viewer.post(f"/api/predictions/{prediction['id']}/feedback", {"label": wrong_label}).status_code == 201
    queue = engineer.get("/api/samples", params={"status": "pending"}).json()["results"]
    mine = [s for s in queue if s["prediction"] == prediction["id"]]
    assert len(mine) == 1 and mine[0]["label"] == wrong_label
    decided = engineer.post(f"/api/samples/{mine[0]['id']}/review", {"decision": "accept"})
    assert decided.json()["status"] == "accepted"
    user_dataset = collect(engineer, source="user", batch_size=100)
    assert user_dataset["source"] == "user" and user_dataset["class_counts"][str(wrong_label)] >= 1
    corrected = viewer.get("/api/predictions", params={"corrected": "true"}).json()["results"]
    assert corrected[0]["corrected_label"] == wrong_label


def test_the_collectors_request_log_is_visible_to_engineers(engineer, platform):
    entries = engineer.get("/api/collector/log", params={"limit": 50}).json()["entries"]
    batches = [e for e in entries if e["path"] == "/batch"]
    assert batches and batches[0]["caller"] == "ml_svc" and batches[0]["rows"] > 0
    viewer = Api(platform.url("gateway"), "viewer", platform.demo_password)
    assert viewer.get("/api/collector/log").status_code == 403
