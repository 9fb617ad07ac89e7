"""Uploading a dataset and scoring a file through the gateway: roles, caps, the collector's refusals passed on, the
runs started, and a scoring run's results and summary."""

import io

import pytest

from kit.contracts import example, storage
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db


def named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def test_an_engineer_uploads_a_dataset_and_its_collect_run_starts(api_as, fake_peers):
    answer = api_as("engineer").post("/api/datasets/upload", {"file": [named(b"PK-zip-bytes", "mine.zip")],
                                                              "name": "my digits"}, format="multipart")
    assert answer.status_code == 202, answer.json()
    body = answer.json()
    assert (body["kind"], body["params"]["source"], body["params"]["upload"]) == ("collect", "upload", "e" * 32)
    assert body["upload"]["count"] == 3 and body["upload"]["files"][0]["name"] == "mine.zip"
    uploaded = fake_peers["collector"].uploaded
    assert uploaded == [{"files": [("mine.zip", b"PK-zip-bytes")], "purpose": "dataset", "uploaded_by": "engineer",
                         "name": "my digits"}]


def test_an_idx_pair_is_two_file_parts(api_as, fake_peers):
    files = [named(b"images", "train-images-idx3-ubyte.gz"), named(b"labels", "train-labels-idx1-ubyte.gz")]
    assert api_as("engineer").post("/api/datasets/upload", {"file": files}, format="multipart").status_code == 202
    assert [name for name, _ in fake_peers["collector"].uploaded[0]["files"]] == [
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("who, path, status", [
    ("viewer", "/api/datasets/upload", 403), ("nobody", "/api/datasets/upload", 403),
    (None, "/api/datasets/upload", 401), ("viewer", "/api/scenarios/infer", 202), (None, "/api/scenarios/infer", 401),
])
def test_who_may_upload(api_as, fake_peers, who, path, status):
    answer = api_as(who).post(path, {"file": [named(b"x", "a.zip")]}, format="multipart")
    assert answer.status_code == status


def test_what_the_collector_refuses_is_passed_on_and_no_run_starts(api_as, fake_peers, monkeypatch):
    started = []
    monkeypatch.setattr(fake_peers["ml"], "start_collect", lambda **params: started.append(params))
    answer = api_as("engineer").post("/api/datasets/upload", {"file": [named(b"x", "evil.zip")]}, format="multipart")
    assert answer.status_code == 400
    assert answer.json()["error"] == {"code": "unsafe_name", "details": {"member": "../x.png"},
                                      "message": "The member '../x.png' has an unsafe name (absolute, `..` or a drive)."}
    assert started == []


def test_an_upload_over_the_cap_is_refused_before_it_is_read(api_as, fake_peers, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    answer = api_as("engineer").post("/api/datasets/upload", {"file": [named(bytes(200_000), "big.zip")]},
                                     format="multipart")
    assert answer.status_code == 413 and answer.json()["error"]["details"] == {"limit": 1000}
    assert fake_peers["collector"].uploaded == []


@pytest.mark.parametrize("files", [[], ["a", "b", "c"]])
def test_one_or_two_files_are_needed(api_as, fake_peers, files):
    answer = api_as("engineer").post("/api/datasets/upload", {"file": [named(b"x", n) for n in files]},
                                     format="multipart")
    assert answer.status_code == 400 and answer.json()["error"]["details"] == {"file": "required"}


def test_a_json_body_is_not_an_upload(api_as, fake_peers):
    answer = api_as("engineer").post("/api/datasets/upload", {"file": "x"}, format="json")
    assert answer.status_code == 415 and answer.json()["error"]["code"] == "unsupported_media_type"


def test_the_collector_down_is_a_503(api_as, fake_peers):
    fake_peers["collector"].down = True
    answer = api_as("viewer").post("/api/scenarios/infer", {"file": [named(b"x", "a.zip")]}, format="multipart")
    assert answer.status_code == 503 and answer.json()["error"]["details"] == {"service": "collector_svc"}


def test_scoring_names_its_version_or_leaves_production_to_ml(api_as, fake_peers):
    client = api_as("viewer")
    answer = client.post("/api/scenarios/infer", {"file": named(b"x", "a.zip"), "model_id": "7"}, format="multipart")
    assert answer.status_code == 202 and answer.json()["params"]["model_id"] == 7
    assert fake_peers["collector"].uploaded[-1]["purpose"] == "score"
    assert client.post("/api/scenarios/infer", {"file": named(b"x", "a.zip"), "model_id": "٣"},
                       format="multipart").json()["error"]["details"] == {"model_id": "a whole number from 1 to 2147483647"}
    assert client.post("/api/scenarios/infer", {"file": named(b"x", "a.zip"), "model_id": "404"},
                       format="multipart").status_code == 404
    assert fake_peers["collector"].forgotten == ["e" * 32], "an upload whose run cannot start is not kept"


RESULTS = b"file,digit,confidence,true_label,correct,error\r\n\"0/a.png\",0,0.9900,0,true,\r\n"


def scoring_run(fake_peers, *, status="succeeded", created_by="viewer") -> int:
    fake_peers["storage"].blobs["c" * 64] = RESULTS
    fake_peers["storage"].runs[40] = example(
        storage.Run, id=40, kind="infer", status=status, created_by=created_by, params={"upload": "e" * 32, "model_id": 1},
        result={"model_version_id": 1, "file": "a.zip", "count": 2, "scored": 1, "unreadable": 1, "labelled": 1,
                "results_sha256": "c" * 64, "accuracy": 1.0,
                "confusion_matrix": [[1 if (r, c) == (0, 0) else 0 for c in range(10)] for r in range(10)]}
        if status == "succeeded" else {})
    return 40


def test_a_scoring_runs_results_are_a_csv_for_its_owner_and_engineers(api_as, fake_peers):
    run_id = scoring_run(fake_peers)
    for who in ("viewer", "engineer"):
        answer = api_as(who).get(f"/api/runs/{run_id}/results.csv")
        assert answer.status_code == 200 and answer.content == RESULTS
        assert answer["Content-Type"].startswith("text/csv")
        assert answer["Content-Disposition"] == 'attachment; filename="run-40-results.csv"'
    assert api_as("other_viewer").get(f"/api/runs/{run_id}/results.csv").status_code == 404


def test_results_wait_for_the_run_and_other_runs_have_none(api_as, fake_peers):
    run_id = scoring_run(fake_peers, status="running")
    answer = api_as("viewer").get(f"/api/runs/{run_id}/results.csv")
    assert answer.status_code == 409 and answer.json()["error"]["details"] == {"status": "running"}
    assert api_as("engineer").get("/api/runs/5/results.csv").status_code == 404


def test_the_run_page_of_a_scoring_shows_accuracy_the_confusion_matrix_and_the_links(client, users, fake_peers):
    run_id = scoring_run(fake_peers)
    assert client.login(username="viewer", password=PASSWORD)
    page = client.get(f"/runs/{run_id}").content.decode()
    assert "Scored 1 of 2 images of a.zip" in page and "1 could not be read" in page
    assert f'href="/api/runs/{run_id}/results.csv"' in page and f"/history?run={run_id}" in page
    assert "Accuracy <strong>1.0000</strong>" in page and 'class="compact confusion"' in page


def test_the_datasets_and_history_pages_carry_the_upload_forms(client, users, fake_peers):
    assert client.login(username="engineer", password=PASSWORD)
    datasets = client.get("/datasets").content.decode()
    assert 'action="/api/datasets/upload"' in datasets and "Up to 64 MiB" in datasets and "web/upload.js" in datasets
    history = client.get("/history").content.decode()
    assert 'action="/api/scenarios/infer"' in history and 'name="model_id"' in history
