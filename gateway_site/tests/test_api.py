import gzip
import hashlib
import io
import re
import zipfile

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from gateway_site.accounts.models import AuditEvent
from kit.contracts import example, storage
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

DIGIT = {"pixels": [[0] * 28] * 28}


def test_a_token_is_issued_for_good_credentials_only(client, users):
    good = client.post("/api/auth/token", {"username": "viewer", "password": PASSWORD}, content_type="application/json")
    assert good.status_code == 200 and len(good.json()["token"]) == 40
    bad = client.post("/api/auth/token", {"username": "viewer", "password": "nope"}, content_type="application/json")
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_credentials"


def test_a_prediction_is_answered_with_201_and_lands_in_the_users_history(api_as, fake_peers):
    client = api_as("viewer")
    response = client.post("/api/predictions", DIGIT, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["digit"] == 7 and body["model"] == {"id": 1, "version": "v1"} and len(body["probabilities"]) == 10
    history = client.get("/api/predictions").json()
    assert [p["id"] for p in history["results"]] == [body["id"]]
    assert fake_peers["storage"].predictions[0]["user"] == "viewer"


def test_a_viewer_sees_only_their_own_history_and_an_engineer_sees_all(api_as, fake_peers):
    api_as("viewer").post("/api/predictions", DIGIT, format="json")
    api_as("other_viewer").post("/api/predictions", DIGIT, format="json")
    assert api_as("other_viewer").get("/api/predictions").json()["count"] == 1
    assert api_as("other_viewer").get("/api/predictions?user=viewer").json()["results"][0]["user"] == "other_viewer"
    assert api_as("engineer").get("/api/predictions").json()["count"] == 2


def test_an_image_can_be_uploaded_as_a_multipart_file(api_as, fake_peers):
    response = api_as("viewer").post("/api/predictions", {"image": io.BytesIO(b"\x89PNG fake")}, format="multipart")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "body, status",
    [({"pixels": "blank"}, 422), ({"bogus": 1}, 400), ([1, 2], 400)],
)
def test_bad_prediction_input_is_a_json_4xx_and_records_nothing(api_as, fake_peers, body, status):
    response = api_as("viewer").post("/api/predictions", body, format="json")
    assert response.status_code == status
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert fake_peers["storage"].predictions == []


def test_with_ml_down_a_prediction_is_a_503_naming_the_service(api_as, fake_peers):
    fake_peers["ml"].down = True
    response = api_as("viewer").post("/api/predictions", DIGIT, format="json")
    assert response.status_code == 503
    assert response["Retry-After"]
    error = response.json()["error"]
    assert error["code"] == "service_unavailable" and error["details"] == {"service": "ml_svc"}
    assert "ml_svc" in error["message"]


def test_health_lists_every_service_and_which_is_down(client, fake_peers):
    fake_peers["storage"].down = True
    body = client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["services"]["storage_svc"]["status"] == "unavailable"
    assert body["services"]["ml_svc"]["status"] == "ok"


def test_scenarios_start_runs_and_are_audited(api_as, fake_peers):
    client = api_as("engineer")
    collect = client.post("/api/scenarios/collect-and-store", {"source": "mnist-5k", "batch_size": 500}, format="json")
    assert collect.status_code == 202 and collect.json()["params"]["created_by"] == "engineer"
    train = client.post("/api/scenarios/train-model", {"dataset_id": 1, "hyperparameters": {"epochs": 3}}, format="json")
    assert train.status_code == 202
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["train.start", "collect.start"]
    unknown = client.post("/api/scenarios/train-model", {"dataset_id": 1, "speed": "max"}, format="json")
    assert unknown.status_code == 400 and "speed" in unknown.json()["error"]["details"]


def test_a_promotion_records_who_and_why(api_as, fake_peers):
    response = api_as("admin").post("/api/models/1/promote", {"alias": "production", "reason": "better on 7s"}, format="json")
    assert response.status_code == 200
    assert fake_peers["storage"].aliases == [("production", 1, "admin", "better on 7s")]
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.details["reason"]) == ("admin", "model.promote", "better on 7s")


def test_another_users_run_is_invisible_to_a_viewer(api_as, fake_peers):
    assert api_as("viewer").get("/api/runs/5").status_code == 404
    assert api_as("viewer").get("/api/runs").json()["count"] == 0
    assert api_as("engineer").get("/api/runs/5").json()["status"] == "running"


def test_demo_accounts_are_seeded_with_their_roles(monkeypatch, capsys):
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-123")
    call_command("seed_demo_accounts")
    assert "demo-password-123" in capsys.readouterr().out
    roles = {u.username: list(u.groups.values_list("name", flat=True)) for u in User.objects.all()}
    assert roles == {"viewer": ["viewer"], "engineer": ["ml_engineer"], "admin": ["admin"]}
    assert User.objects.get(username="engineer").check_password("demo-password-123")


def test_the_ledger_pages_past_50_entries_and_shows_no_internal_address(api_as, fake_peers):
    fake_peers["storage"].ledger = [example(storage.AliasChange, id=n, alias="production", to_version=n % 3 + 1)
                                    for n in range(120, 0, -1)]
    viewer = api_as("viewer")
    first = viewer.get("/api/models/ledger").json()
    assert (first["count"], first["page"], first["has_next"], len(first["results"])) == (120, 1, True, 50)
    third = viewer.get("/api/models/ledger?page=3").json()
    assert third["page"] == 3 and not third["has_next"] and [c["id"] for c in third["results"]] == list(range(20, 0, -1))
    one_version = viewer.get("/api/models/ledger?version=2&page_size=10").json()
    assert one_version["count"] == 40 and {c["to_version"] for c in one_version["results"]} == {2}
    assert "127.0.0.1" not in str(first) + str(third) and "next" not in first
    assert viewer.get("/api/models/ledger?page=%C2%B2").status_code == 400


def test_the_api_docs_page_is_served_from_this_site_with_no_outside_request(client, users):
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    script = client.get("/api/docs/?script=")
    js = script.content.decode()
    assert script.status_code == 200 and "/api/schema/" in js
    assert '"validatorUrl": null' in js, "no badge fetched from swagger.io"
    for text in (html, js):
        assert re.findall(r"https?://[^\s\"'<>]+", text) == [], "every URL is this site's"
    assert "<script>" not in html, "the start script is a file of its own: the CSP allows no inline script"
    client.login(username="viewer", password=PASSWORD)
    assert 'href="/api/docs/"' in client.get("/").content.decode(), "the navigation links the docs"


def read_idx(data: bytes) -> np.ndarray:
    raw = gzip.decompress(data)
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw[4 + 4 * dims:], np.uint8).reshape(shape)


def test_a_dataset_downloads_as_the_mnist_idx_pair_or_a_csv_with_the_same_digits(api_as, fake_peers):
    images, labels = fake_peers["storage"].dataset_arrays(1)
    engineer = api_as("engineer")
    idx = engineer.get("/api/datasets/1/download?format=idx")
    assert idx.status_code == 200 and idx["Content-Type"] == "application/zip"
    assert idx["Content-Disposition"] == 'attachment; filename="dataset-1-train-idx.zip"'
    with zipfile.ZipFile(io.BytesIO(idx.content)) as archive:
        assert archive.namelist() == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
        assert np.array_equal(read_idx(archive.read("train-images-idx3-ubyte.gz")), images)
        assert np.array_equal(read_idx(archive.read("train-labels-idx1-ubyte.gz")), labels)
    assert engineer.get("/api/datasets/1/download").content == idx.content, "IDX is the default, and the same bytes"
    csv = engineer.get("/api/datasets/1/download?format=csv")
    assert csv["Content-Type"].startswith("text/csv")
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert lines[0].split(",")[:3] == ["label", "pixel0", "pixel1"] and len(lines[0].split(",")) == 785
    table = np.array([[int(v) for v in line.split(",")] for line in lines[1:]])
    assert np.array_equal(table[:, 0], labels) and np.array_equal(table[:, 1:].reshape(-1, 28, 28), images)


def test_a_model_downloads_with_its_hash_and_a_card_saying_how_to_run_it(api_as, fake_peers):
    engineer = api_as("engineer")
    onnx = engineer.get("/api/models/7/download?format=onnx")
    assert onnx.status_code == 200 and onnx.content == b"onnx-of-v7"
    assert onnx["X-Content-SHA256"] == hashlib.sha256(onnx.content).hexdigest()
    assert onnx["Content-Disposition"] == 'attachment; filename="model-v7.onnx"'
    weights = engineer.get("/api/models/7/download?format=safetensors")
    version = fake_peers["storage"].get_model_version(7)
    assert weights.content == fake_peers["storage"].get_blob(version["weights_sha256"])
    assert weights["X-Content-SHA256"] == hashlib.sha256(weights.content).hexdigest()
    card = engineer.get("/api/models/7/card").json()
    assert card["files"] == {"onnx": "/api/models/7/download?format=onnx",
                             "safetensors": "/api/models/7/download?format=safetensors"}
    assert "probabilities" in card["output"] and "0-255" in card["input"]


@pytest.mark.parametrize("path", ["/api/models/7/download?format=pickle", "/api/datasets/1/download?format=npz"])
def test_an_unknown_download_format_is_a_400_naming_the_formats(api_as, path):
    answer = api_as("engineer").get(path)
    assert answer.status_code == 400 and answer.json()["error"]["details"] == {"format": path.rsplit("=", 1)[1]}


@pytest.mark.parametrize("path", ["/api/models/7/download", "/api/models/7/card", "/api/datasets/1/download"])
def test_downloads_are_for_engineers(api_as, path):
    assert api_as("viewer").get(path).status_code == 403


def test_an_engineer_evaluates_a_version_on_a_dataset_and_anyone_lists_its_evaluations(api_as, fake_peers):
    started = api_as("engineer").post("/api/scenarios/evaluate", {"model_id": 7, "dataset_id": 2}, format="json")
    assert started.status_code == 202
    assert (started.json()["kind"], started.json()["params"]) == ("evaluate", {"model_id": 7, "dataset_id": 2})
    assert AuditEvent.objects.filter(action="evaluate.start", target=f"run:{started.json()['id']}").exists()
    bad = api_as("engineer").post("/api/scenarios/evaluate", {"model_id": 7}, format="json")
    assert bad.status_code == 400 and "dataset_id" in bad.json()["error"]["details"]
    fake_peers["storage"].evaluation_rows = [example(storage.Evaluation, id=3, model_version=7, dataset=2,
                                                     metrics={"accuracy": 0.9912, "evaluated_on": 10000})]
    listed = api_as("viewer").get("/api/models/7/evaluations").json()
    assert (listed["count"], listed["results"][0]["metrics"]["evaluated_on"]) == (1, 10000)
    assert api_as("viewer").get("/api/models/8/evaluations").json()["count"] == 0
