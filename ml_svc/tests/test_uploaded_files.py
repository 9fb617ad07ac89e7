"""Uploaded files in the worker: collected as a dataset with lineage, or scored as a run whose answers go to the
history and to a results CSV."""

import csv
import io

import numpy as np
import pytest

from ml_svc.jobs import collect_body, infer_body, run_scenario
from tests.fakes import staged_upload
from tests.support import register


@pytest.fixture
def production(storage, trained_weights):
    version_id = register(storage, trained_weights)
    storage.set_alias("production", model_version_id=version_id, actor="admin", reason="test")
    return version_id


def test_an_uploaded_dataset_is_stored_with_its_lineage_and_split_and_the_upload_dropped(storage, collector, digits):
    images, labels = digits
    upload = staged_upload(collector, images[:200], labels[:200], purpose="dataset")
    run = storage.create_run(kind="collect", params={"source": "upload", "upload": upload, "split": "train",
                                                    "batch_size": 1000}, created_by="eve")
    result = run_scenario(run["id"], collect_body)
    dataset = storage.get_dataset(result["dataset_id"])
    assert (dataset["num_samples"], dataset["source"], dataset["name"]) == (200, "upload", "my-digits")
    assert dataset["meta"]["lineage"] == {
        "source": "upload", "split": "train", "uploaded_by": "eve", "format": "zip", "first": 200, "of": 200,
        "files": [{"name": "my-digits.zip", "bytes": 1234, "sha256": "a" * 64}]}
    assert dataset["meta"]["validation"]["validation"] == 20
    stored_images, stored_labels = storage.dataset_arrays(dataset["id"])
    assert np.array_equal(stored_images, images[:200]) and np.array_equal(stored_labels, labels[:200])
    assert upload not in collector.uploads


def test_an_unreadable_image_fails_the_collect_naming_it_and_stores_nothing(storage, collector, digits):
    images, labels = digits
    upload = staged_upload(collector, images[:30], labels[:30], purpose="dataset", errors={7: "The image is blank"})
    run = storage.create_run(kind="collect", params={"source": "upload", "upload": upload, "split": "train",
                                                    "batch_size": 1000}, created_by="eve")
    assert run_scenario(run["id"], collect_body) is None
    failed = storage.get_run(run["id"])
    assert failed["status"] == "failed" and "7/digit-7.png: The image is blank" in failed["error"]
    assert storage.datasets == {}


def test_a_scored_file_is_recorded_in_the_history_and_as_results_with_accuracy(storage, collector, digits,
                                                                               production):
    images, labels = digits
    upload = staged_upload(collector, images[-50:], labels[-50:], purpose="score", errors={3: "The image is blank"})
    run = storage.create_run(kind="infer", params={"upload": upload, "model_id": production,
                                                  "file": "my-digits.zip"}, created_by="eve")
    result = run_scenario(run["id"], infer_body)
    assert (result["count"], result["scored"], result["unreadable"], result["labelled"]) == (50, 49, 1, 49)
    rows = list(csv.DictReader(io.StringIO(storage.get_blob(result["results_sha256"]).decode())))
    assert [row["file"] for row in rows] == [f"{n}/digit-{n}.png" for n in range(50)]
    assert (rows[3]["digit"], rows[3]["error"], rows[3]["true_label"]) == ("", "The image is blank", str(labels[-47]))
    scored = [row for row in rows if row["digit"]]
    correct = [row["correct"] == "true" for row in scored]
    assert all(row["correct"] == str(row["digit"] == row["true_label"]).lower() for row in scored)
    assert result["accuracy"] == pytest.approx(sum(correct) / 49) and result["accuracy"] > 0.8
    assert sum(map(sum, result["confusion_matrix"])) == 49
    history = list(storage.predictions.values())
    assert len(history) == 49 and {p["run_id"] for p in history} == {run["id"]}
    assert {p["user"] for p in history} == {"eve"} and {p["model_version_id"] for p in history} == {production}
    assert [p["digit"] for p in history] == [int(row["digit"]) for row in scored]
    assert upload not in collector.uploads


def test_an_unlabelled_file_is_scored_without_accuracy(storage, collector, digits, production):
    upload = staged_upload(collector, digits[0][:5], None, purpose="score")
    run = storage.create_run(kind="infer", params={"upload": upload, "model_id": production},
                             created_by="eve")
    result = run_scenario(run["id"], infer_body)
    assert result["labelled"] == 0 and "accuracy" not in result
    rows = list(csv.DictReader(io.StringIO(storage.get_blob(result["results_sha256"]).decode())))
    assert {(row["true_label"], row["correct"]) for row in rows} == {("", "")}
    assert all(0 < float(row["confidence"]) <= 1 for row in rows)


def test_a_file_name_a_spreadsheet_would_run_is_written_as_text(storage, collector, digits, production):
    upload = staged_upload(collector, digits[0][:1], None, purpose="score")
    collector.uploads[upload][1][0]["name"] = '=HYPERLINK("http://x","y").png'
    run = storage.create_run(kind="infer", params={"upload": upload, "model_id": production}, created_by="eve")
    data = storage.get_blob(run_scenario(run["id"], infer_body)["results_sha256"]).decode()
    assert data.splitlines()[1].startswith('"\'=HYPERLINK(""http://x"",""y"").png",')


def test_starting_a_scoring_checks_the_upload_and_the_version(db, api, storage, collector, digits, production):
    scored = staged_upload(collector, digits[0][:3], None, purpose="score")
    dataset = staged_upload(collector, digits[0][:3], digits[1][:3], purpose="dataset")

    def start(**body):
        return api.post("/jobs/infer", {"created_by": "eve", **body}, content_type="application/json")

    assert start(upload="0" * 32).status_code == 404
    assert start(upload="not-an-id").status_code == 400
    assert "not to score" in start(upload=dataset).json()["error"]["message"]
    assert start(upload=scored, model_id=999).status_code == 404
    answer = start(upload=scored)
    assert answer.status_code == 202
    params = answer.json()["params"]
    assert (params["model_id"], params["count"]) == (production, 3)
    storage.aliases.clear()
    refused = start(upload=scored)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_production_model"


def test_collecting_an_upload_checks_it_was_uploaded_as_a_dataset(db, api, storage, collector, digits):
    scored = staged_upload(collector, digits[0][:3], None, purpose="score")

    def start(**body):
        return api.post("/jobs/collect", {"source": "upload", "created_by": "eve", **body},
                        content_type="application/json")

    assert start().json()["error"]["details"] == {"upload": "required"}
    assert "not to dataset" in start(upload=scored).json()["error"]["message"]
    dataset = staged_upload(collector, digits[0][:3], digits[1][:3], purpose="dataset")
    answer = start(upload=dataset)
    assert answer.status_code == 202 and answer.json()["params"]["upload"] == dataset
