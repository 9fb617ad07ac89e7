"""Corrections, labelled uploads and the review queue, through the API and the pages."""

import pytest

from gateway_site.accounts.models import AuditEvent
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db
DIGIT = {"pixels": [[0] * 28] * 28}


def predicted(api_as, username="viewer") -> int:
    return api_as(username).post("/api/predictions", DIGIT, format="json").json()["id"]


def test_an_owner_corrects_a_prediction_and_it_waits_in_the_review_queue(api_as, fake_peers):
    prediction_id = predicted(api_as)
    response = api_as("viewer").post(f"/api/predictions/{prediction_id}/feedback", {"label": 3}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "pending"
    queue = api_as("engineer").get("/api/samples", {"status": "pending"}).json()
    assert [(s["label"], s["user"]) for s in queue["results"]] == [(3, "viewer")]
    assert AuditEvent.objects.filter(action="prediction.correct").count() == 1


def test_another_viewer_cannot_see_or_correct_someone_elses_prediction(api_as, fake_peers):
    prediction_id = predicted(api_as, "viewer")
    response = api_as("other_viewer").post(f"/api/predictions/{prediction_id}/feedback", {"label": 3}, format="json")
    assert response.status_code == 404
    assert fake_peers["storage"].samples == []


@pytest.mark.parametrize("body", [{"label": 10}, {"label": "three"}, {}, {"label": 3, "extra": 1}])
def test_a_bad_correction_is_a_400_and_queues_nothing(api_as, fake_peers, body):
    prediction_id = predicted(api_as)
    assert api_as("viewer").post(f"/api/predictions/{prediction_id}/feedback", body, format="json").status_code == 400
    assert fake_peers["storage"].samples == []


def test_a_labelled_drawing_becomes_a_pending_sample_and_an_engineer_accepts_it(api_as, fake_peers):
    created = api_as("viewer").post("/api/samples", {"label": 5, **DIGIT}, format="json")
    assert created.status_code == 201
    sample_id = created.json()["id"]
    accepted = api_as("engineer").post(f"/api/samples/{sample_id}/review", {"decision": "accept"}, format="json")
    assert accepted.json()["status"] == "accepted" and accepted.json()["reviewed_by"] == "engineer"
    assert api_as("engineer").get("/api/samples", {"status": "pending"}).json()["count"] == 0


def test_a_blank_labelled_drawing_is_refused(api_as, fake_peers):
    fake_peers["ml"].sees_blank = True
    response = api_as("viewer").post("/api/samples", {"label": 5, **DIGIT}, format="json")
    assert response.status_code == 422 and fake_peers["storage"].samples == []


def test_the_answer_fragment_offers_a_correction_that_lands_in_the_queue(client, users, fake_peers):
    from tests.support import canvas_data_url

    client.login(username="viewer", password=PASSWORD)
    html = client.post("/recognize", {"image_data": canvas_data_url()}, HTTP_HX_REQUEST="true").content.decode()
    assert "Wrong? Pick the right digit" in html and 'value="3"' in html
    prediction_id = fake_peers["storage"].predictions[0]["id"]
    done = client.post(f"/predictions/{prediction_id}/feedback", {"label": "3"}, HTTP_HX_REQUEST="true")
    assert "recorded as <strong>3</strong>" in done.content.decode()
    assert fake_peers["storage"].samples[0]["label"] == 3


def test_the_review_page_accepts_a_sample(client, users, fake_peers, api_as):
    sample_id = api_as("viewer").post("/api/samples", {"label": 5, **DIGIT}, format="json").json()["id"]
    client.login(username="engineer", password=PASSWORD)
    page = client.get("/review").content.decode()
    assert f'id="sample-{sample_id}"' in page and "Accept" in page
    card = client.post(f"/review/{sample_id}", {"decision": "accept"}, HTTP_HX_REQUEST="true").content.decode()
    assert "accepted by engineer" in card


def test_the_datasets_page_shows_distribution_checksum_and_the_collector_log(client, users, fake_peers):
    client.login(username="engineer", password=PASSWORD)
    html = client.get("/datasets").content.decode()
    assert 'data-chart="chart-1"' in html and "ab" * 32 in html and "/static/plotly/plotly.min.js" in html
    assert "source=mnist-5k&amp;size=1000" in html and "ml_svc" in html
    started = client.post("/datasets/collect", {"source": "mnist-5k", "split": "train", "batch_size": "500"}, HTTP_HX_REQUEST="true")
    assert 'hx-get="/runs/11/row"' in started.content.decode()
    bad = client.post("/datasets/collect", {"source": "mnist-5k", "batch_size": "lots"}, HTTP_HX_REQUEST="true")
    assert "must be a whole number" in bad.content.decode()


def test_the_datasets_page_still_lists_datasets_when_the_collector_is_down(client, users, fake_peers):
    fake_peers["collector"].down = True
    client.login(username="engineer", password=PASSWORD)
    response = client.get("/datasets")
    assert response.status_code == 200
    html = response.content.decode()
    assert "collector_svc is unavailable" in html and "mnist-5k-train" in html
