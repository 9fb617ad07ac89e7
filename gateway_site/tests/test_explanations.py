"""Explanations through the gateway (peers are the in-memory fakes): on a prediction of one's own, inline with
`"explain": true`, never computed for a prediction that does not ask; and the review queue, least sure first."""

import base64

import pytest

from gateway_site.wsgi import application
from kit.contracts import check, example, gateway, ml, storage
from kit.wsgitest import call

pytestmark = pytest.mark.django_db
DIGIT = {"pixels": [[0] * 28] * 28}


def test_a_prediction_asked_with_explain_answers_why_and_others_pay_nothing(api_as, fake_peers):
    client = api_as("viewer")
    plain = client.post("/api/predictions", DIGIT, format="json").json()
    assert "explanation" not in plain and fake_peers["ml"].explained == [], "no explanation unless asked"
    explained = client.post("/api/predictions", {**DIGIT, "explain": True}, format="json")
    assert explained.status_code == 201
    body = check(explained.json(), gateway.PredictionAnswer)
    assert body["explanation"]["method"] == "integrated_gradients"
    assert fake_peers["ml"].explained == [(body["image"], body["model"]["id"], body["digit"])], "the answered digit"
    for bad in ("yes", 1, None, [True]):
        assert client.post("/api/predictions", {**DIGIT, "explain": bad}, format="json").status_code == 400


def test_the_hot_path_answers_explain_too(users, fake_peers):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=users["viewer"]).key
    answer = call(application, "POST", "/api/predictions", {**DIGIT, "explain": True},
                  headers={"Authorization": f"Token {token}"})
    assert answer.status == 201 and answer.json()["explanation"]["target"] == answer.json()["digit"]


def test_an_explanation_of_a_recorded_prediction_is_the_owners_or_an_engineers(api_as, fake_peers):
    mine = api_as("viewer").post("/api/predictions", DIGIT, format="json").json()
    why = api_as("viewer").get(f"/api/predictions/{mine['id']}/explanation")
    assert why.status_code == 200
    check(why.json(), ml.Explanation)
    assert api_as("other_viewer").get(f"/api/predictions/{mine['id']}/explanation").status_code == 404
    assert api_as("engineer").get(f"/api/predictions/{mine['id']}/explanation").status_code == 200
    assert api_as("viewer").get("/api/predictions/999999/explanation").status_code == 404
    fake_peers["ml"].down = True
    answer = api_as("viewer").get(f"/api/predictions/{mine['id']}/explanation")
    assert answer.status_code == 503 and answer.json()["error"]["details"]["service"] == "ml_svc"


def test_the_review_queue_can_ask_for_the_least_sure_first(api_as, client, users, fake_peers):
    asked = []
    real = fake_peers["storage"].list_samples

    def listing(**filters):
        asked.append(filters)
        return real(**filters)

    fake_peers["storage"].list_samples = listing
    assert api_as("engineer").get("/api/samples", {"status": "pending", "order": "uncertainty"}).status_code == 200
    assert asked[-1]["order"] == "uncertainty"
    client.force_login(users["engineer"])
    page = client.get("/review?order=uncertainty").content.decode()
    assert asked[-1]["order"] == "uncertainty" and "least sure first</strong>" in page
    assert 'id="order-uncertainty"' in client.get("/review").content.decode()
    fake_peers["storage"].samples.append(example(storage.Sample, id=3, prediction=9, confidence=0.31,
                                                 status="pending", image=base64.b64encode(bytes(784)).decode()))
    assert "answered with 0.31 confidence" in client.get("/review?order=uncertainty").content.decode()


def test_recognize_offers_why_and_shows_the_overlay(client, users, fake_peers):
    client.force_login(users["viewer"])
    answer = client.post("/recognize", {"image_data": "data:image/png;base64,iVBORw0KGgo="}, HTTP_HX_REQUEST="true")
    page = answer.content.decode()
    assert "Why 7?" in page and fake_peers["ml"].explained == [], "asked only when the button is pressed"
    prediction = fake_peers["storage"].predictions[0]["id"]
    why = client.get(f"/predictions/{prediction}/why").content.decode()
    assert 'src="data:image/png;base64,iVBORw0KGgo="' in why and "Red pixels pushed the model towards" in why
    client.force_login(users["other_viewer"])
    assert "does not exist" in client.get(f"/predictions/{prediction}/why").content.decode()
    fake_peers["ml"].down = True
    client.force_login(users["viewer"])
    assert "ml_svc" in client.get(f"/predictions/{prediction}/why").content.decode()


def test_why_shows_the_nearest_training_digits_and_history_rows_offer_it(client, users, fake_peers):
    client.force_login(users["viewer"])
    client.post("/recognize", {"image_data": "data:image/png;base64,iVBORw0KGgo="}, HTTP_HX_REQUEST="true")
    prediction = fake_peers["storage"].predictions[0]
    why = client.get(f"/predictions/{prediction['id']}/why").content.decode()
    assert "Training digits it finds closest" in why and why.count('alt="a training 7"') == 5 and "0.99" in why
    history = client.get("/history").content.decode()
    assert f'hx-get="/predictions/{prediction["id"]}/why"' in history and f"Why {prediction['digit']}?" in history


def test_the_error_browser_answers_a_cell_with_overlays_from_each_source(api_as, fake_peers):
    engineer = api_as("engineer")
    whole = engineer.get("/api/models/1/errors")
    assert whole.status_code == 200
    body = check(whole.json(), gateway.ErrorCell)
    assert body["matrix"][4][9] == 2 and body["cell"] is None and body["source"] == "held-out"
    cell = check(engineer.get("/api/models/1/errors", {"true": 4, "predicted": 9}).json(), gateway.ErrorCell)["cell"]
    assert (cell["true"], cell["predicted"], cell["count"]) == (4, 9, 2) and all(i["overlay_png"] for i in cell["items"])
    fake_peers["storage"].evaluation_rows = [example(storage.Evaluation, id=200 - n, model_version=1, dataset=3 if n == 193 else 2)
                                             for n in range(195)]  # evaluation 7 on the second page of 100
    asked = []
    real = fake_peers["ml"].errors
    fake_peers["ml"].errors = lambda *a, **k: asked.append((a, k)) or real(*a, **k)
    engineer.get("/api/models/1/errors", {"source": "evaluation:7", "true": 4, "predicted": 9})
    assert asked[-1][1]["dataset_id"] == 3 and asked[-1][1]["part"] == "all", "the evaluation's whole dataset"
    for params, status in [({"source": "evaluation:5"}, 404), ({"source": "train"}, 400), ({"source": "evaluation:x"}, 400),
                           ({"true": 4}, 400), ({"true": 10, "predicted": 1}, 400), ({"true": "٤", "predicted": 9}, 400)]:
        answer = engineer.get("/api/models/1/errors", params)
        assert answer.status_code == status, (params, answer.content)
    mine = api_as("viewer").post("/api/predictions", DIGIT, format="json").json()
    fake_peers["storage"].predictions[-1]["corrected_label"] = 4
    fake_peers["storage"].predictions.append({**fake_peers["storage"].predictions[-1], "id": 999, "run": 5})
    live = engineer.get("/api/models/1/errors", {"source": "live", "true": 4, "predicted": mine["digit"]}).json()
    assert live["count"] == 1 and live["cell"]["items"][0]["prediction"] == mine["id"]
    assert live["cell"]["items"][0]["overlay_png"]
    fake_peers["ml"].down = True
    assert engineer.get("/api/models/1/errors").status_code == 503
    assert api_as("viewer").get("/api/models/1/errors").status_code == 403


def test_chosen_digits_go_to_the_review_queue_with_one_label_all_or_none(api_as, fake_peers):
    engineer = api_as("engineer")
    images = [base64.b64encode(bytes([n]) * 784).decode() for n in range(2)]
    sent = engineer.post("/api/samples/batch", {"label": 4, "images": images}, format="json")
    assert sent.status_code == 201 and sent.json()["created"] == 2
    queued = fake_peers["storage"].samples
    assert [(s["label"], s["user"], s["status"], s["image"]) for s in queued] == [(4, "engineer", "pending", i) for i in images]
    short = engineer.post("/api/samples/batch", {"label": 4, "images": images + ["AAAA"]}, format="json").json()
    assert list(short["error"]["details"]) == ["images[2]"], "named as the caller sent it"
    for bad in ({"label": 4, "images": images + ["AAAA"]}, {"label": 10, "images": images}, {"label": 4, "images": []},
                {"label": 4, "images": images * 51}, {"label": "4\x00", "images": images}):
        assert engineer.post("/api/samples/batch", bad, format="json").status_code == 400
    assert len(fake_peers["storage"].samples) == 2, "a refused batch adds nothing"


def test_the_error_browser_page_opens_a_cell_and_sends_two_digits_to_review(client, users, fake_peers):
    client.force_login(users["engineer"])
    page = client.get("/models/1/errors").content.decode()
    assert 'data-cell="4-9"' in page and "Pick a count in the matrix" in page
    cell = client.get("/models/1/errors?true=4&predicted=9", HTTP_HX_REQUEST="true").content.decode()
    assert "True 4, answered 9" in cell and cell.count('name="image"') == 2 and "<html" not in cell
    images = [base64.b64encode(bytes([40 + n]) * 784).decode() for n in range(2)]
    assert all(image in cell for image in images)
    sent = client.post("/models/1/errors/review", {"label": "4", "image": images}).content.decode()
    assert "2 digits sent to the" in sent and [s["label"] for s in fake_peers["storage"].samples] == [4, 4]
    refused = client.post("/models/1/errors/review", {"label": "4"}).content.decode()
    assert "Tick at least one digit" in refused and len(fake_peers["storage"].samples) == 2
    client.force_login(users["viewer"])
    client.post("/recognize", {"image_data": "data:image/png;base64,iVBORw0KGgo="}, HTTP_HX_REQUEST="true")
    fake_peers["storage"].predictions[-1]["corrected_label"] = 4
    client.force_login(users["engineer"])
    digit = fake_peers["storage"].predictions[-1]["digit"]
    live = client.get(f"/models/1/errors?source=live&true=4&predicted={digit}", HTTP_HX_REQUEST="true").content.decode()
    assert "already in the" in live and 'name="image"' not in live, "a correction is in the queue already"
    fake_peers["ml"].down = True
    assert "ml_svc" in client.get("/models/1/errors").content.decode()


def test_the_review_queue_can_include_unlabelled_live_predictions_least_sure_first(client, users, fake_peers):
    asked = []
    real = fake_peers["storage"].list_predictions
    fake_peers["storage"].list_predictions = lambda **filters: asked.append(filters) or real(**filters)
    client.force_login(users["viewer"])
    client.post("/recognize", {"image_data": "data:image/png;base64,iVBORw0KGgo="}, HTTP_HX_REQUEST="true")
    client.force_login(users["engineer"])
    assert 'id="with-live"' in client.get("/review?order=uncertainty").content.decode() and asked == []
    page = client.get("/review?order=uncertainty&live=1").content.decode()
    assert asked[-1] == {"corrected": "false", "live": "true", "order": "uncertainty", "page_size": 12}
    prediction = fake_peers["storage"].predictions[0]
    assert f'hx-post="/predictions/{prediction["id"]}/feedback"' in page and "least sure first" in page
