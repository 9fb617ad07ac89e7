"""Before the first model serves, every page still answers, says the model is on its way, and Recognize turns
Predict on by itself once it serves; monitoring charts read well at any amount of data."""

from __future__ import annotations

from datetime import date

import pytest

from gateway_site.web import charts
from kit.contracts import example, storage
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client, users, fake_peers):
    assert client.login(username="viewer", password=PASSWORD)
    return client


def first_training(fake_peers, **fields):
    run = example(storage.Run, **{"id": 9, "kind": "train", "status": "running", "progress": 0.5, "created_by": "system",
                                  "message": "epoch 6/12, loss 0.2100", "created_at": "2026-11-23T00:00:00Z",
                                  "epochs": [{"epoch": 6, "loss": 0.21, "eta_s": 12.4}], **fields})
    fake_peers["storage"].runs = {9: run}
    return run


def serve_a_model(fake_peers):
    fake_peers["storage"].versions[1] = example(storage.ModelVersion, id=1, version="v1", architecture="cnn-dense",
                                                created_by="system", created_at="2026-11-23T00:00:00Z",
                                                metrics={"accuracy": 0.99, "evaluated_on": 500})
    fake_peers["storage"].alias_targets["production"] = 1


@pytest.mark.parametrize("path", ["/", "/dashboard"])
def test_before_the_first_model_pages_answer_and_show_its_progress(viewer, fake_peers, path):
    first_training(fake_peers)
    response = viewer.get(path)
    html = response.content.decode()
    assert response.status_code == 200
    assert "The first model is on its way" in html and "training, 52 %, about 12 s left" in html
    assert 'hx-trigger="every 2s"' in html, "the panel polls until a model serves"


def test_recognize_keeps_predict_off_until_a_model_serves_then_the_poll_turns_it_on(viewer, fake_peers):
    first_training(fake_peers, kind="collect", progress=0.4, epochs=[])
    html = viewer.get("/").content.decode()
    assert '<button type="submit" id="predict" disabled' in html
    assert "collecting the digits, 2 %" in html
    assert 'hx-get="/model-status?for=recognize"' in html
    serve_a_model(fake_peers)
    panel = viewer.get("/model-status?for=recognize", HTTP_HX_REQUEST="true").content.decode()
    assert '<button type="submit" id="predict" hx-swap-oob="true">Predict</button>' in panel
    assert "hx-trigger" not in panel, "polling stops once a model serves"
    assert "v1" in panel and "0.9900" in panel


def test_the_dashboard_poll_does_not_touch_a_predict_button_it_does_not_have(viewer, fake_peers):
    serve_a_model(fake_peers)
    panel = viewer.get("/model-status", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-swap-oob" not in panel and "v1" in panel


def test_with_no_first_start_job_the_pages_say_how_a_model_comes(viewer, fake_peers):
    fake_peers["storage"].runs = {}
    html = viewer.get("/dashboard").content.decode()
    assert "No model serves yet. An engineer can train one" in html


def test_a_failed_first_model_is_said_with_its_reason(viewer, fake_peers):
    first_training(fake_peers, status="failed", error="no word from the ML worker for 20 s")
    html = viewer.get("/").content.decode()
    assert "The first model could not be trained: no word from the ML worker for 20 s" in html


def test_a_drawing_sent_before_any_model_gets_a_message_not_an_error_page(viewer, fake_peers):
    first_training(fake_peers)
    fake_peers["ml"].no_model = True
    response = viewer.post("/recognize", {"image_data": "data:image/png;base64,iVBORw0KGgo="}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "No model is serving yet" in response.content.decode()


@pytest.mark.parametrize("days_with_data", [1, 14])
def test_monitoring_charts_show_the_whole_window_one_tick_a_day(days_with_data):
    today = date(2026, 11, 23)
    series = [{"day": f"2026-11-{23 - back:02d}", "model_version_id": 1, "count": 3, "digits": [3] + [0] * 9,
               "mean_confidence": 0.9, "correction_rate": 0.0} for back in range(days_with_data)]
    specs = charts.monitoring(series, days=14, today=today)
    for name in ("count", "confidence", "corrections"):
        xaxis = specs[name]["layout"]["xaxis"]
        assert xaxis["type"] == "date" and xaxis["dtick"] == charts.DAY_MS
        assert xaxis["range"] == ["2026-11-09T12:00", "2026-11-23T12:00"], "14 days, each tick mid-slot"
        assert specs[name]["layout"]["margin"]["b"] >= 50, "room for slanted day labels"


def test_the_run_chart_leaves_room_for_its_right_axis():
    layout = charts.training_curves([{"epoch": 1, "loss": 0.5, "train_accuracy": 0.8, "val_accuracy": 0.85}])["layout"]
    assert layout["yaxis2"]["side"] == "right" and layout["margin"]["r"] >= 50
    assert layout["xaxis"]["range"] == [0.5, 1.5], "a single epoch sits in the middle, not on the edge"


def test_a_first_start_job_that_stopped_between_its_steps_is_said_not_shown_as_progress(viewer, fake_peers):
    first_training(fake_peers, kind="collect", status="succeeded", progress=1.0, finished_at="2026-01-01T00:00:00Z")
    html = viewer.get("/dashboard").content.decode()
    assert "The first-start job stopped after its collect run" in html and "hx-trigger" in html
