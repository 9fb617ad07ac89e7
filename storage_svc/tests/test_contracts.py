"""The contract test: the real StorageClient against storage_svc's real views, in-process on PostgreSQL.

Every answer is checked against the client's declared return type (kit.contracts.storage), so a field added,
dropped or retyped on either side fails here; the fakes other services test against answer those same types.
"""

import base64

import numpy as np
import pytest

from kit import imagepack
from kit.clients import StorageClient
from kit.wsgitest import ContractClient, database_kept
from storage_svc.wsgi import application


@pytest.fixture
def storage(settings, db):
    with database_kept():
        yield ContractClient(StorageClient, application, settings.SERVICE_TOKEN)


def digit(value: int) -> str:
    return base64.b64encode(bytes([value]) * 784).decode()


def test_every_storage_client_call_meets_the_real_views(storage, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver below is on loopback
    hook = storage.create_webhook(url="https://127.0.0.1:9/hook", events=["alias.moved", "gate.refused"],
                                  created_by="root")
    assert len(hook["secret"]) == 64 and storage.webhooks()["results"][0]["id"] == hook["id"]
    images = np.arange(20 * 784, dtype=np.uint32).reshape(20, 28, 28).astype(np.uint8)
    labels = (np.arange(20) % 10).astype(np.uint8)
    dataset = storage.create_dataset(imagepack.pack(images, labels), name="digits", source="mnist-5k", split="train",
                                     created_by="ann", meta={"validation": {"fraction": 0.1}})
    child = storage.create_dataset(imagepack.pack(images[:5], labels[:5]), name="more", source="user", split="train",
                                   created_by="ann", parents=[dataset["id"]])
    assert child["parents"] == [dataset["id"]] and dataset["class_counts"]["3"] == 2
    assert storage.get_dataset(dataset["id"]) == dataset
    assert storage.list_datasets(source="user")["results"] == [child]
    got_images, got_labels = storage.dataset_arrays(dataset["id"])
    assert np.array_equal(got_images, images) and np.array_equal(got_labels, labels)

    run = storage.create_run(kind="train", params={"epochs": 1}, created_by="ann")
    storage.update_run(run["id"], status="running", progress=0.5, epochs=[{"epoch": 1, "loss": 0.3}])
    assert storage.get_run(run["id"])["progress"] == 0.5
    assert [r["id"] for r in storage.list_runs(created_by="ann")["results"]] == [run["id"]]

    blob = storage.put_blob(b"weights")
    assert storage.get_blob(blob["sha256"]) == b"weights"
    version = storage.create_model_version({
        "architecture": "cnn", "dataset_ids": [dataset["id"]], "weights_sha256": blob["sha256"],
        "metrics": {"accuracy": 0.97}, "created_by": "ann", "run_id": run["id"]})
    assert (version["weights_size"], version["run"], version["aliases"]) == (7, run["id"], [])
    assert storage.annotate_model_version(version["id"], "first")["note"] == "first"
    assert storage.list_model_versions()["results"][0]["id"] == version["id"]
    assert storage.production_version() is None
    alias = storage.set_alias("production", model_version_id=version["id"], actor="root", reason="first")
    assert alias["model_version"]["aliases"] == ["production"]
    assert storage.get_alias("production") == alias and storage.production_version()["id"] == version["id"]
    assert storage.get_model_version(version["id"])["aliases"] == ["production"]
    assert storage.alias_ledger(version=version["id"])["results"][0]["to_version"] == version["id"]

    evaluation = storage.create_evaluation(version["id"], dataset_id=child["id"], run_id=run["id"],
                                           metrics={"accuracy": 0.9, "evaluated_on": 5}, created_by="ann")
    assert (evaluation["dataset"], evaluation["run"], evaluation["metrics"]["accuracy"]) == (child["id"], run["id"], 0.9)
    assert storage.evaluations(version["id"])["results"] == [evaluation]
    assert storage.stored_report(version["id"], kind="pdf", input_sha256="a" * 64) is None
    storage.store_report(version["id"], b"%PDF-1.7", kind="pdf", input_sha256="a" * 64)
    assert storage.stored_report(version["id"], kind="pdf", input_sha256="a" * 64) == b"%PDF-1.7"

    index = storage.put_blob(b"nearest-examples index")
    second = storage.create_model_version({
        "architecture": "cnn", "dataset_ids": [dataset["id"]], "weights_sha256": blob["sha256"], "metrics": {},
        "created_by": "ann", "nearest_index_sha256": index["sha256"]})
    assert (version["nearest_index_sha256"], second["nearest_index_sha256"]) == (None, index["sha256"])
    assert storage.delete_blob(index["sha256"]) == {"deleted": False}, "an index a version uses stays"
    storage.set_alias("candidate", model_version_id=second["id"], actor="ann", reason="trained")
    state = storage.set_canary(share=0.25, actor="root", reason="try it")
    assert (state["candidate"]["id"], state["canary_share"]) == (second["id"], 0.25)
    assert storage.rollout() == state

    rows = [{"image_b64": digit(n), "digit": n, "probabilities": [0.1] * 10, "model_version_id": version["id"],
             "latency_ms": 1.5, "user": "ann", "request_key": f"key-{n}",
             "shadow": {"model_version_id": second["id"], "digit": 0, "confidence": 0.5}} for n in range(3)]
    recorded = storage.create_predictions(rows)
    assert storage.create_predictions(rows) == recorded, "a repeated write answers the same rows"
    prediction = storage.get_prediction(recorded[0]["id"])
    assert (prediction["digit"], prediction["image"], prediction["model"]["id"]) == (0, digit(0), version["id"])
    assert storage.list_predictions(user="ann")["count"] == 3
    assert storage.prediction_stats(days=3)["series"][0]["count"] == 3
    correction = storage.prediction_feedback(prediction["id"], label=6, user="ann")
    assert (correction["prediction"], correction["status"]) == (prediction["id"], "pending")
    errors = storage.live_errors(version["id"], true=6, predicted=0)
    assert errors["matrix"][6][0] == errors["count"] == 1 and errors["cell"]["items"][0]["prediction"] == prediction["id"]
    assert storage.list_predictions(corrected="false", live="true", order="uncertainty")["count"] == 2
    assert storage.emit_event("gate.refused", {"model_version": second["id"]})["id"] is not None
    claimed = storage.claim_deliveries(limit=10, lease_s=30)
    assert [d["event"]["type"] for d in claimed] == ["alias.moved", "alias.moved", "gate.refused"]
    delivered = storage.delivery_result(claimed[0]["id"], attempt=claimed[0]["attempt"], status_code=204, error="")
    assert delivered["status"] == "delivered" and storage.deliveries(status="delivered")["count"] == 1
    drift = storage.drift(version["id"], days=2)
    assert drift["days"][0]["predictions"] == 3 and drift["reference"]["dataset_id"] == dataset["id"]
    assert storage.production_drift()["drift"]["model_version"] == version["id"]
    storage.delete_webhook(hook["id"])
    shadow = storage.shadow(second["id"])
    assert (shadow["count"], shadow["agreement"], shadow["corrected"]["count"]) == (3, round(1 / 3, 5), 1)

    sample = storage.create_sample({"image_b64": digit(9), "label": 9, "user": "bo"})
    sent = storage.create_samples([{"image_b64": digit(n), "label": 4, "user": "eve"} for n in (1, 2)])
    assert sent["created"] == 2 and [s["label"] for s in sent["samples"]] == [4, 4]
    assert storage.list_samples(status="pending")["count"] == 4
    for extra in sent["samples"]:
        storage.review_sample(extra["id"], status="rejected", reviewer="root")
    assert storage.review_sample(sample["id"], status="accepted", reviewer="root")["reviewed_by"] == "root"
    accepted_images, accepted_labels = storage.accepted_samples()
    assert accepted_labels.tolist() == [9] and accepted_images[0].max() == 9

    orphan = storage.put_blob(b"nobody's")
    assert storage.delete_blob(orphan["sha256"]) == {"deleted": True}
    assert storage.delete_blob(blob["sha256"]) == {"deleted": False}, "weights a version uses stay"
    storage.ready()

    assert storage.not_called() == set(), "every call the client offers is checked here"
