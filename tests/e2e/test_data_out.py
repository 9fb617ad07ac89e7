"""Data out, with real processes behind the front: a training's server-sent events from start to end, its model as a
working ONNX file and as weights, a dataset as IDX and CSV, the API docs."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import time
import zipfile

import numpy as np
import onnxruntime
import pytest
import requests

from tests.e2e.support import Api, sample_digits


@pytest.fixture(scope="module")
def engineer(platform):
    return Api(platform.url("gateway"), "engineer", platform.demo_password)


def events_of(response) -> list[dict]:
    """Every event of a server-sent-events stream, until it ends."""
    found, fields = [], {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if "event" in fields:
                found.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return found


def read_idx(data: bytes) -> np.ndarray:
    raw = gzip.decompress(data)
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw[4 + 4 * raw[3]:], np.uint8).reshape(shape)


@pytest.fixture(scope="module")
def dataset(engineer) -> dict:
    collect = engineer.post("/api/scenarios/collect-and-store", {"source": "mnist-5k", "batch_size": 5000})
    assert collect.status_code == 202, collect.text
    run = engineer.wait_for_run(collect.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    return engineer.get(f"/api/datasets/{run['result']['dataset_id']}").json()


def test_a_training_streams_every_epoch_then_its_outcome_and_its_model_works_as_a_downloaded_onnx_file(
        platform, engineer, dataset):
    train = engineer.post("/api/scenarios/train-model", {"dataset_id": dataset["id"], "architecture": "cnn",
                                                        "hyperparameters": {"epochs": 4, "width": 16}})
    assert train.status_code == 202, train.text
    with requests.get(f"{engineer.base}/api/runs/{train.json()['id']}/events", stream=True, timeout=(5, 120),
                      headers={**engineer.headers, "Accept": "text/event-stream"}) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        events = events_of(stream)
    assert [e["event"] for e in events] == ["progress"] * (len(events) - 1) + ["end"]
    assert [e["id"] for e in events] == sorted({e["id"] for e in events}), "each event is news, in order"
    epochs = [len(e["data"]["epochs"]) for e in events]
    assert epochs == sorted(epochs) and len(set(epochs)) >= 3, f"epochs arrive as they end, not only at the end: {epochs}"
    finished = events[-1]["data"]
    assert finished["status"] == "succeeded" and [e["epoch"] for e in finished["epochs"]] == [1, 2, 3, 4]
    assert finished == engineer.get(f"/api/runs/{finished['id']}").json(), "an event carries the run's fields"

    version = engineer.get(f"/api/models/{finished['result']['model_version_id']}").json()
    onnx = engineer.get(f"/api/models/{version['id']}/download?format=onnx")
    assert onnx.status_code == 200 and onnx.headers["X-Content-SHA256"] == hashlib.sha256(onnx.content).hexdigest()
    images, _ = sample_digits()
    answer = engineer.post("/api/predictions", {"pixels": images[4321].tolist(), "model_id": version["id"]}).json()
    seen = np.frombuffer(base64.b64decode(answer["image"]), np.uint8).reshape(1, 28, 28).astype(np.float32)
    session = onnxruntime.InferenceSession(onnx.content, providers=["CPUExecutionProvider"])
    assert session.run(["probabilities"], {"pixels": seen})[0][0] == pytest.approx(answer["probabilities"], abs=1e-5)
    weights = engineer.get(f"/api/models/{version['id']}/download?format=safetensors")
    assert hashlib.sha256(weights.content).hexdigest() == weights.headers["X-Content-SHA256"] == version["weights_sha256"]
    card = engineer.get(f"/api/models/{version['id']}/card").json()
    assert (card["version"], card["weights_sha256"]) == (version["version"], version["weights_sha256"])


def test_a_dataset_downloads_as_the_mnist_pair_and_as_csv_with_its_digits(engineer, dataset):
    idx = engineer.get(f"/api/datasets/{dataset['id']}/download?format=idx")
    assert idx.status_code == 200 and idx.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(idx.content)) as archive:
        images = read_idx(archive.read("train-images-idx3-ubyte.gz"))
        labels = read_idx(archive.read("train-labels-idx1-ubyte.gz"))
    assert images.shape == (5000, 28, 28)
    assert {str(d): int(c) for d, c in enumerate(np.bincount(labels, minlength=10))} == dataset["class_counts"]
    csv = engineer.get(f"/api/datasets/{dataset['id']}/download?format=csv")
    rows = csv.text.splitlines()
    assert len(rows) == 5001 and rows[1] == ",".join(str(v) for v in [labels[0], *images[0].ravel()])


def test_the_api_docs_and_their_assets_are_served_by_the_platform(platform):
    base = platform.url("gateway")
    page = requests.get(f"{base}/api/docs/", timeout=10)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
    bundle = requests.get(f"{base}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", timeout=10)
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


def test_an_engineer_gets_the_standard_10000_digit_test_accuracy_of_the_serving_version(platform, engineer):
    serving = platform.ensure_production_model()
    collect = engineer.post("/api/scenarios/collect-and-store", {"source": "mnist", "split": "test", "batch_size": 5000})
    official = engineer.get(f"/api/datasets/{engineer.wait_for_run(collect.json()['id'])['result']['dataset_id']}").json()
    started = engineer.post("/api/scenarios/evaluate", {"model_id": serving["id"], "dataset_id": official["id"]})
    assert started.status_code == 202, started.text
    run = engineer.wait_for_run(started.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    [evaluation] = engineer.get(f"/api/models/{serving['id']}/evaluations").json()["results"]
    metrics = evaluation["metrics"]
    assert (evaluation["dataset"], metrics["evaluated_on"]) == (official["id"], 10000)
    assert metrics["accuracy"] == run["result"]["accuracy"] > 0.9
    assert sum(map(sum, metrics["confusion_matrix"])) == 10000
    report = requests.get(f"{engineer.base}/api/models/{serving['id']}/report.json", headers=engineer.headers, timeout=60)
    assert report.json()["evaluations"][0]["id"] == evaluation["id"], "the report shows it"


def test_fifty_watchers_of_a_run_leave_the_gateway_answering_everyone_else(platform, engineer, dataset):
    platform.ensure_production_model()
    train = engineer.post("/api/scenarios/train-model", {"dataset_id": dataset["id"], "architecture": "cnn",
                                                        "hyperparameters": {"epochs": 30, "width": 16}})
    run_id = train.json()["id"]
    url, headers = f"{engineer.base}/api/runs/{run_id}/events", {**engineer.headers, "Accept": "text/event-stream"}
    watchers = [requests.get(url, headers=headers, stream=True, timeout=(5, 60)) for _ in range(50)]
    try:
        assert {w.status_code for w in watchers} == {200}
        images, _ = sample_digits()
        for _ in range(5):
            started = time.monotonic()
            health = engineer.get("/api/health")
            answer = engineer.post("/api/predictions", {"pixels": images[7].tolist()})
            assert (health.status_code, answer.status_code) == (200, 201), answer.text
            assert time.monotonic() - started < 5, "fifty open streams hold fifty threads, not the gateway"
    finally:
        engineer.post(f"/api/runs/{run_id}/cancel")
        ends = [events_of(w)[-1] for w in watchers]
        for w in watchers:
            w.close()
    assert {(e["event"], e["data"]["status"]) for e in ends} == {("end", "cancelled")}, "every watcher hears the end"
