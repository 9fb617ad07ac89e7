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
