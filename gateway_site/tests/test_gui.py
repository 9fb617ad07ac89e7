"""The engineer's and admin's pages: dashboard, train form, live run, compare, console, CSV export."""

import base64
import csv
import io
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User

from gateway_site.accounts.models import AuditEvent
from kit.contracts import example, storage
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_user(client, users, fake_peers):
    def login(username):
        client.logout()
        assert client.login(username=username, password=PASSWORD)
        return client

    return login


def test_the_dashboard_shows_services_the_serving_model_and_monitoring_charts(as_user, fake_peers):
    fake_peers["storage"].versions[2] = example(storage.ModelVersion, id=2, version="v2", architecture="cnn",
                                                created_by="engineer", created_at="2026-11-23T00:00:00Z",
                                                metrics={"accuracy": 0.9876, "evaluated_on": 500})
    fake_peers["storage"].alias_targets["production"] = 2
    fake_peers["collector"].down = True
    html = as_user("viewer").get("/dashboard").content.decode()
    assert "0.9876" in html and "v2" in html
    assert "collector_svc is unavailable" in html, "the dashboard says which service is down"
    for chart in ("chart-count", "chart-mix", "chart-confidence", "chart-corrections"):
        assert f'data-chart="{chart}"' in html
    assert "/static/plotly/plotly.min.js" in html


def test_the_train_form_is_built_from_declared_hyperparameters(as_user):
    html = as_user("engineer").get("/train").content.decode()
    assert 'name="epochs" type="number" step="1" value="25"' in html and 'min="1" max="200"' in html
    assert 'type="checkbox" id="hp-augment" name="augment" checked' in html
    fine = as_user("engineer").get("/train?mode=fine-tune").content.decode()
    assert 'name="replay_size"' in fine and 'name="base_model_id"' in fine


def test_the_train_form_preselects_the_architecture_ml_svc_trains_by_default(as_user, fake_peers):
    fake_peers["ml"].default_architecture = "mlp"
    html = as_user("engineer").get("/train").content.decode()
    assert '<option value="mlp" selected>' in html and '<option value="cnn" >' in html
    assert 'name="learning_rate"' not in html, "the form shows the MLP's hyperparameters"


def test_bad_hyperparameters_come_back_inline_next_to_their_field(as_user, fake_peers):
    client = as_user("engineer")
    typed = client.post("/train", {"mode": "train", "dataset_id": "1", "architecture": "cnn", "epochs": "many"})
    assert typed.status_code == 400 and "epochs must be an integer" in typed.content.decode()
    bounded = client.post("/train", {"mode": "train", "dataset_id": "1", "architecture": "cnn", "epochs": "999"})
    assert bounded.status_code == 400 and "epochs must be at most 200" in bounded.content.decode()
    assert 'aria-invalid="true"' in bounded.content.decode()


def test_starting_a_training_leads_to_its_live_run_page(as_user, fake_peers):
    client = as_user("engineer")
    response = client.post("/train", {"mode": "train", "dataset_id": "1", "architecture": "cnn", "epochs": "3", "augment": "on"},
                           HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"] == "/runs/12"
    assert AuditEvent.objects.filter(action="train.start").exists()


def test_the_run_page_polls_until_the_run_ends_and_can_cancel(as_user, fake_peers):
    run = fake_peers["storage"].runs[5]
    run["epochs"] = [{"epoch": 1, "loss": 0.5, "train_accuracy": 0.9, "val_accuracy": 0.92, "seconds": 2.0, "eta_s": 2.0}]
    run["params"] = {"epochs": 2}
    html = as_user("engineer").get("/runs/5").content.decode()
    assert 'hx-get="/runs/5"' in html and 'hx-trigger="every 2s"' in html and 'data-chart="chart-curves"' in html
    assert "about 2.0 s left" in html and "Cancel run" in html
    assert 'data-events="/api/runs/5/events"' in html and "/static/web/run_events.js" in html, "it follows the events"
    live = as_user("engineer").get("/runs/5?live=1", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-events="/api/runs/5/events"' in live and "hx-trigger" not in live, "refreshed by events, it stops polling"
    panel = as_user("engineer").post("/runs/5/cancel", HTTP_HX_REQUEST="true").content.decode()
    assert "cancelled" in panel and "hx-trigger" not in panel and "Cancel run" not in panel
    assert as_user("viewer").get("/runs/5").status_code == 404, "another user's run stays invisible"


def test_the_compare_page_shows_deltas_and_samples(as_user, fake_peers):
    fake_peers["ml"].comparison = {
        "dataset_id": 1, "evaluated_on": 500,
        "accuracy": {"baseline": 0.95, "candidate": 0.97, "delta": 0.02}, "fixed_count": 11, "broken_count": 1,
        "per_class": {str(d): {"precision": 0.01, "recall": -0.01 if d == 3 else 0.02, "f1": 0.0} for d in range(10)},
        "confusion_matrix_delta": [[-1 if i == j == 3 else 0 for j in range(10)] for i in range(10)],
        "fixed": [{"index": 0, "label": 4, "before": 9, "after": 4, "image": base64.b64encode(bytes(784)).decode()}],
    }
    html = as_user("viewer").get("/models/compare?baseline=1&candidate=2").content.decode()
    assert "11</strong> fixed" in html and "0.0200" in html and "-0.0100" in html
    assert "true 4: was 9, now 4" in html


def test_the_console_promotes_with_a_reason_only(as_user, fake_peers):
    client = as_user("admin")
    refused = client.post("/console/promote", {"version_id": "3", "alias": "production", "reason": ""})
    assert refused.status_code == 400 and fake_peers["storage"].aliases == []
    done = client.post("/console/promote", {"version_id": "3", "alias": "production", "reason": "rollback"})
    assert "v3 is now production" in done.content.decode()
    assert fake_peers["storage"].aliases == [("production", 3, "admin", "rollback")]


def test_the_console_sets_roles_but_an_admin_cannot_demote_themselves(as_user, users):
    client = as_user("admin")
    viewer = User.objects.get(username="viewer")
    client.post("/console/role", {"user_id": str(viewer.pk), "role": "ml_engineer"})
    assert list(viewer.groups.values_list("name", flat=True)) == ["ml_engineer"]
    admin = User.objects.get(username="admin")
    refused = client.post("/console/role", {"user_id": str(admin.pk), "role": "viewer"})
    assert "cannot remove your own admin role" in refused.content.decode()
    assert list(admin.groups.values_list("name", flat=True)) == ["admin"]
    html = client.get("/console").content.decode()
    assert "account.role" in html and "Alias ledger" in html


def test_history_filters_and_exports_csv_with_formulas_defused(as_user, fake_peers, api_as):
    api_as("viewer").post("/api/predictions", {"pixels": [[0] * 28] * 28}, format="json")
    fake_peers["storage"].predictions[0]["user"] = "=HYPERLINK(evil)"
    fake_peers["storage"].predictions[0]["corrected_label"] = None
    response = as_user("engineer").get("/history?format=csv&digit=7")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["id", "created_at", "user", "digit", "confidence", "model_version", "corrected_label"]
    assert rows[1][2] == "'=HYPERLINK(evil)" and rows[1][3] == "7"
    page = as_user("engineer").get("/history?digit=7&corrected=false").content.decode()
    assert 'value="false" selected' in page and "Export CSV" in page


def test_the_train_form_sends_only_what_the_engineer_changed(as_user, fake_peers, monkeypatch):
    started = []
    monkeypatch.setattr(fake_peers["ml"], "start_training", lambda **params: started.append(params) or
                        {"id": 12, "kind": "train", "status": "queued", "params": params, "created_by": "engineer"})
    response = as_user("engineer").post("/train", {"mode": "train", "dataset_id": "1", "architecture": "cnn",
                                                   "epochs": "25", "learning_rate": "0.01", "augment": "on"})
    assert response.status_code == 302
    assert started[0]["hyperparameters"] == {"learning_rate": 0.01}, "fields at their default are left to the platform"


@pytest.mark.parametrize("method, path, form", [
    ("POST", "/train", {"mode": "train", "dataset_id": "abc", "architecture": "cnn"}),
    ("POST", "/train", {"mode": "train", "dataset_id": "²", "architecture": "cnn"}),
    ("POST", "/train", {"mode": "train", "dataset_id": "1", "architecture": "cnn", "epochs": "٣"}),
    ("POST", "/train", {"mode": "train", "dataset_id": "1", "architecture": "cnn", "epochs": str(2**70)}),
    ("POST", "/train", {"mode": "fine-tune", "base_model_id": "1" * 30}),
    ("GET", "/models/compare?baseline=²&candidate=1", None),
    ("GET", "/models/compare?baseline=99999999999999999999&candidate=1", None),
    ("GET", "/history?page=²", None),
    ("GET", "/history?digit=٣", None),
    ("GET", "/history?user=%00", None),
    ("GET", "/runs?kind=a%00b", None),
    ("GET", "/datasets?page=²", None),
    ("POST", "/datasets/collect", {"source": "mnist-5k", "batch_size": "²"}),
    ("POST", "/datasets/collect", {"source": "mnist-5k", "batch_size": str(10**40)}),
    ("POST", "/predictions/1/feedback", {"label": "²"}),
    ("POST", "/console/promote", {"version_id": "²", "reason": "x"}),
    ("POST", "/console/role", {"user_id": "9" * 40, "role": "viewer"}),
    ("GET", "/runs/99999999999999999999", None),
])
def test_odd_input_in_page_forms_is_a_clear_answer_never_a_500(as_user, fake_peers, method, path, form):
    client = as_user("admin")
    response = client.generic(method, path, data=urlencode(form or {}), content_type="application/x-www-form-urlencoded")
    assert response.status_code < 500, (path, form, response.status_code)
    if response.status_code == 400:
        assert "must be" in response.content.decode() or "control character" in response.content.decode()


def test_engineers_find_download_links_on_the_models_and_datasets_pages(as_user, fake_peers):
    engineer = as_user("engineer")
    models = engineer.get("/models").content.decode()
    assert 'href="/api/models/1/download?format=onnx"' in models and 'href="/api/models/1/card"' in models
    assert 'href="/api/models/1/download?format=safetensors"' in models
    datasets = engineer.get("/datasets").content.decode()
    assert 'href="/api/datasets/1/download?format=idx"' in datasets and 'href="/api/datasets/1/download?format=csv"' in datasets
    assert "/download" not in as_user("viewer").get("/models").content.decode(), "downloads are for engineers"
