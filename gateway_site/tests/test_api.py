import io

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
