"""Data in, with real processes behind the front: a dataset uploaded in each format becomes an immutable dataset
with its lineage; one is trained on, the model taken away as ONNX, and a ZIP of 50 labelled digits is scored as a
run whose answers the ONNX file gives too; hostile archives are refused with nothing kept."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import numpy as np
import onnxruntime
import pytest
import requests

from kit.digitfiles import csv_lines, idx_file, image_folders_zip, png, symlink_zip, zip_of
from kit.preprocessing import canonical_from_bytes
from tests.e2e.support import Api, mixed_digits


@pytest.fixture(scope="module")
def engineer(platform):
    return Api(platform.url("gateway"), "engineer", platform.demo_password)


@pytest.fixture(scope="module")
def viewer(platform):
    return Api(platform.url("gateway"), "viewer", platform.demo_password)


def upload(api: Api, path: str, files: list[tuple[str, bytes]], **fields) -> requests.Response:
    return requests.post(api.base + path, files=[("file", f) for f in files], data=fields, headers=api.headers,
                         timeout=120)


def collected(api: Api, files: list[tuple[str, bytes]], **fields) -> dict:
    answer = upload(api, "/api/datasets/upload", files, **fields)
    assert answer.status_code == 202, answer.text
    run = api.wait_for_run(answer.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    return api.get(f"/api/datasets/{run['result']['dataset_id']}").json()


def test_each_upload_format_becomes_a_dataset_with_its_lineage(engineer):
    images, labels = mixed_digits()
    pair = [("train-images-idx3-ubyte.gz", idx_file(images[:300])), ("train-labels-idx1-ubyte", idx_file(labels[:300], gz=False))]
    big_csv = "".join(csv_lines(images, labels)).encode()
    assert len(big_csv) > 4 * 1024 * 1024, "over the front's cap for other requests: only uploads may be this large"
    cases = {
        "idx pair": (pair, 300, images[:300], labels[:300]),
        "zipped idx": ([("mnist.zip", zip_of(dict(pair)))], 300, images[:300], labels[:300]),
        "csv": ([("all.csv", big_csv)], 5000, images, labels),
    }
    trainings = {}
    for case, (files, count, expected_images, expected_labels) in cases.items():
        dataset = collected(engineer, files, name=f"upload {case}")
        assert (dataset["num_samples"], dataset["source"], dataset["name"]) == (count, "upload", f"upload {case}"), case
        lineage = dataset["meta"]["lineage"]
        assert lineage["uploaded_by"] == "engineer" and [f["name"] for f in lineage["files"]] == [n for n, _ in files]
        assert [f["sha256"] for f in lineage["files"]] == [hashlib.sha256(d).hexdigest() for _, d in files]
        assert dataset["meta"]["validation"]["validation"] == pytest.approx(count * 0.1, abs=5), "per class, rounded"
        assert dataset["class_counts"] == {str(d): int((expected_labels == d).sum()) for d in range(10)}
        stored = engineer.get(f"/api/datasets/{dataset['id']}/download?format=csv").text.splitlines()[1:]
        table = np.loadtxt(stored, delimiter=",", dtype=np.uint8, ndmin=2)
        assert np.array_equal(table[:, 0], expected_labels) and np.array_equal(table[:, 1:].reshape(-1, 28, 28),
                                                                               expected_images), case
        train = engineer.post("/api/scenarios/train-model", {"dataset_id": dataset["id"], "architecture": "cnn",
                                                            "hyperparameters": {"epochs": 1, "width": 8}})
        assert train.status_code == 202, train.text
        trainings[case] = (train.json()["id"], dataset["id"])
    for case, (run_id, dataset_id) in trainings.items():  # each uploaded dataset trains a version
        trained = engineer.wait_for_run(run_id, timeout_s=300)
        assert trained["status"] == "succeeded", (case, trained["error"])
        version = engineer.get(f"/api/models/{trained['result']['model_version_id']}").json()
        assert version["datasets"] == [dataset_id], case


def test_an_uploaded_zip_is_trained_on_and_a_scored_file_agrees_with_the_downloaded_onnx_file(engineer, viewer):
    images, labels = mixed_digits()
    dataset = collected(engineer, [("drawn.zip", image_folders_zip(images[:3000], labels[:3000], size=64))])
    assert dataset["num_samples"] == 3000 and dataset["meta"]["lineage"]["format"] == "zip"
    train = engineer.post("/api/scenarios/train-model", {"dataset_id": dataset["id"], "architecture": "cnn",
                                                        "hyperparameters": {"epochs": 4, "width": 16}})
    assert train.status_code == 202, train.text
    trained = engineer.wait_for_run(train.json()["id"], timeout_s=300)
    assert trained["status"] == "succeeded", trained["error"]
    version_id = trained["result"]["model_version_id"]
    onnx = engineer.get(f"/api/models/{version_id}/download?format=onnx").content

    to_score = image_folders_zip(images[-50:], labels[-50:], size=80)
    answer = upload(viewer, "/api/scenarios/infer", [("fifty.zip", to_score)], model_id=str(version_id))
    assert answer.status_code == 202, answer.text
    assert answer.json()["upload"]["count"] == 50 and answer.json()["upload"]["labelled"] == 50
    run = viewer.wait_for_run(answer.json()["id"])
    assert run["status"] == "succeeded", run["error"]
    rows = list(csv.DictReader(io.StringIO(viewer.get(f"/api/runs/{run['id']}/results.csv").text)))
    assert len(rows) == 50 and {row["true_label"] for row in rows} == {str(d) for d in set(labels[-50:].tolist())}
    assert run["result"]["accuracy"] == pytest.approx(sum(row["correct"] == "true" for row in rows) / 50)
    assert run["result"]["accuracy"] > 0.8, (run["result"], trained["result"])
    assert sum(map(sum, run["result"]["confusion_matrix"])) == 50

    with zipfile.ZipFile(io.BytesIO(to_score)) as archive:
        seen = np.stack([canonical_from_bytes(archive.read(row["file"])) for row in rows]).astype(np.float32)
    session = onnxruntime.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {"pixels": seen})[0]
    assert probabilities.argmax(1).tolist() == [int(row["digit"]) for row in rows], "the file answers as the run did"
    assert probabilities.max(1) == pytest.approx([float(row["confidence"]) for row in rows], abs=1e-4)

    history = viewer.get(f"/api/predictions?run={run['id']}&page_size=100").json()
    assert history["count"] == 50 and {p["model"]["id"] for p in history["results"]} == {version_id}


def test_hostile_uploads_are_refused_at_once_and_nothing_is_kept(engineer):
    datasets_before = engineer.get("/api/datasets").json()["count"]
    runs_before = engineer.get("/api/runs").json()["count"]
    one = png(mixed_digits()[0][0])
    refused = {
        "unsafe_name": [("evil.zip", zip_of({"../3/a.png": one}))],
        "symlink": [("link.zip", symlink_zip("3/link.png", "/etc/passwd"))],
        "suspicious_archive": [("bomb.zip", zip_of({"3/a.png": b"\x89PNG\r\n\x1a\n" + bytes(150_000_000)}))],
        "not_digit_folder": [("cats.zip", zip_of({"cats/a.png": one, "3/b.png": one}))],
        "not_an_image": [("notes.zip", zip_of({"3/a.png": one, "3/notes.txt": b"hello"}))],
        "label_out_of_range": [("d.csv", b"11" + b",0" * 784 + b"\n")],
        "mismatched_idx": [("i.gz", idx_file(np.zeros((3, 28, 28)))), ("l.gz", idx_file(np.zeros(2)))],
    }
    for code, files in refused.items():
        answer = upload(engineer, "/api/datasets/upload", files)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == code, (code, answer.text[:300])
    absolute = upload(engineer, "/api/datasets/upload", [("abs.zip", zip_of({"/etc/3/a.png": one}))])
    assert absolute.json()["error"]["details"] == {"member": "/etc/3/a.png"}
    too_many = image_folders_zip(np.zeros((10_001, 28, 28), np.uint8), None)  # blank, but counted first
    answer = upload(engineer, "/api/scenarios/infer", [("many.zip", too_many)])
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_many_images", answer.text[:300]
    answer = upload(engineer, "/api/datasets/upload", [("huge.csv", bytes(65 * 1024 * 1024))])
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large", "the front's cap for uploads"
    assert engineer.get("/api/datasets").json()["count"] == datasets_before
    assert engineer.get("/api/runs").json()["count"] == runs_before
