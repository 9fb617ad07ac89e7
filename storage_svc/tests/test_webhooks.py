"""Webhooks in the domain database: registration (HTTPS, public destinations), the outbox of events written with the
changes themselves, leased claims, back-off and the end of retrying; and drift, which raises its alert once a day."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from storage_svc.registry import drift
from storage_svc.registry.models import WebhookDelivery
from tests.test_registry import promote, second_version
from tests.test_rollout import correct, record

pytestmark = pytest.mark.django_db
PUBLIC = "https://93.184.216.34/hooks/digitlab"  # an address literal: no name to resolve offline


def register(api, url=PUBLIC, events=("alias.moved",)):
    return api.post("/webhooks", {"url": url, "events": list(events), "created_by": "root"},
                    content_type="application/json")


def claim(api, limit=10, lease_s=30):
    answer = api.post("/webhooks/deliveries/claim", {"limit": limit, "lease_s": lease_s}, content_type="application/json")
    assert answer.status_code == 200, answer.content
    return answer.json()["deliveries"]


def result(api, delivery, status_code, error=""):
    return api.post(f"/webhooks/deliveries/{delivery['id']}/result",
                    {"attempt": delivery["attempt"], "status_code": status_code, "error": error},
                    content_type="application/json")


@pytest.mark.parametrize("url, problem", [
    ("http://93.184.216.34/hook", "HTTPS only"),
    ("https://user:pw@93.184.216.34/hook", "credentials"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://localhost:8443/hook", "private, loopback or reserved"),
    ("https://10.1.2.3/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "reserved"),
    ("https://[::1]/hook", "loopback"),
    ("https://0.0.0.0/hook", "reserved"),
    ("https://no-such-host.invalid/hook", "does not resolve"),
    ("https:///nohost", "no host"),
    ("https://93.184.216.34:99999/hook", "not valid"),
])
def test_a_destination_that_is_not_public_https_is_refused_and_nothing_is_registered(api, url, problem):
    answer = register(api, url)
    assert answer.status_code == 400 and answer.json()["error"]["code"] in ("invalid_destination", "invalid")
    assert problem in answer.json()["error"]["message"]
    assert api.get("/webhooks").json()["count"] == 0


def test_private_destinations_are_allowed_only_when_the_platform_says_so(api, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert register(api, "https://127.0.0.1:8443/hook").status_code == 201
    assert register(api, "http://127.0.0.1:8443/hook").status_code == 400, "HTTPS all the same"


def test_a_webhook_gets_a_secret_once_and_names_known_events(api):
    assert register(api, events=["alias.moved", "nonsense"]).json()["error"]["details"] == {"events": "unknown: nonsense"}
    assert register(api, events=[]).status_code == 400
    made = register(api, events=["alias.moved", "run.finished", "alias.moved"]).json()
    assert len(made["secret"]) == 64 and made["events"] == ["alias.moved", "run.finished"]
    listed = api.get("/webhooks").json()["results"]
    assert [h["id"] for h in listed] == [made["id"]] and "secret" not in listed[0]
    assert api.delete(f"/webhooks/{made['id']}").status_code == 204
    assert api.delete(f"/webhooks/{made['id']}").status_code == 404


def test_changes_write_their_events_for_the_webhooks_that_subscribed(api, model_version, settings):
    moves = register(api, events=["alias.moved"]).json()
    everything = register(api, events=["run.finished", "version.registered", "alias.moved", "rollback.auto"]).json()
    run = api.post("/runs", {"kind": "train", "params": {}, "created_by": "ann"}, content_type="application/json").json()
    api.patch(f"/runs/{run['id']}", {"status": "running"}, content_type="application/json")
    api.patch(f"/runs/{run['id']}", {"status": "succeeded", "result": {"accuracy": 0.9}}, content_type="application/json")
    newer = second_version(api, model_version)
    promote(api, "production", model_version["id"], reason="first")
    due = claim(api)
    types = sorted(d["event"]["type"] for d in due)
    assert types == ["alias.moved", "alias.moved", "run.finished", "version.registered"], "progress is no event"
    finished = next(d for d in due if d["event"]["type"] == "run.finished")
    assert finished["event"]["data"]["run"] == {"id": run["id"], "kind": "train", "status": "succeeded",
                                                "created_by": "ann", "error": "", "result": {"accuracy": 0.9}}
    registered = next(d for d in due if d["event"]["type"] == "version.registered")
    assert registered["event"]["data"]["version"]["id"] == newer["id"]
    moved = [d for d in due if d["event"]["type"] == "alias.moved"]
    assert {d["secret"] for d in moved} == {moves["secret"], everything["secret"]}
    assert moved[0]["event"]["data"]["to_version"] == model_version["id"] and moved[0]["allow_private"] is False


def test_an_automatic_rollback_is_an_alias_move_and_its_own_event_with_the_figures(api, model_version, settings):
    settings.ROLLBACK_WINDOW, settings.ROLLBACK_MIN_PREDICTIONS, settings.ROLLBACK_MARGIN = 100, 10, 0.05
    register(api, events=["rollback.auto"])
    newer = second_version(api, model_version)
    promote(api, "production", model_version["id"])
    record(api, model_version["id"], [1] * 20)
    promote(api, "production", newer["id"])
    ids = record(api, newer["id"], [4] * 10)
    for n in range(3):
        correct(api, ids[n], 9)
    [event] = [d["event"] for d in claim(api)]
    assert event["type"] == "rollback.auto" and event["data"]["to_version"] == model_version["id"]
    assert event["data"]["figures"]["production"] == {"version": newer["id"], "predictions": 10, "corrections": 1,
                                                      "rate": 0.1}, "the first correction past the margin moves it"


def test_a_claim_is_leased_retried_with_back_off_and_fails_after_the_last_attempt(api, settings):
    settings.WEBHOOK_RETRY_BASE_S, settings.WEBHOOK_MAX_ATTEMPTS = 2.0, 3
    register(api, events=["gate.refused"])
    api.post("/events", {"type": "gate.refused", "data": {"model_version": 7}}, content_type="application/json")
    [first] = claim(api, lease_s=60)
    assert first["attempt"] == 1 and claim(api) == [], "leased: no second worker sends it meanwhile"
    assert result(api, first, 500, "answered 500").json()["status"] == "pending"
    row = WebhookDelivery.objects.get(pk=first["id"])
    assert timedelta(seconds=1.5) < row.next_attempt_at - timezone.now() <= timedelta(seconds=2)
    assert claim(api) == [], "not before its back-off"
    WebhookDelivery.objects.filter(pk=first["id"]).update(next_attempt_at=timezone.now())
    [second] = claim(api)
    assert second["attempt"] == 2
    assert result(api, first, 200).json()["error"]["code"] == "stale_attempt", "the first attempt's word is too late"
    result(api, second, None, "no answer within 5 s")
    row.refresh_from_db()
    assert timedelta(seconds=3.5) < row.next_attempt_at - timezone.now() <= timedelta(seconds=4), "doubled"
    WebhookDelivery.objects.filter(pk=first["id"]).update(next_attempt_at=timezone.now())
    [third] = claim(api)
    failed = result(api, third, 404, "answered 404").json()
    assert (failed["status"], failed["attempts"], failed["last_status_code"], failed["last_error"]) == (
        "failed", 3, 404, "answered 404")
    assert result(api, third, 200).status_code == 409
    assert api.get("/webhooks/deliveries", {"status": "failed"}).json()["count"] == 1


def test_a_delivery_whose_last_attempt_never_reported_fails_instead_of_being_sent_forever(api, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    register(api, events=["gate.refused"])
    api.post("/events", {"type": "gate.refused", "data": {}}, content_type="application/json")
    for attempt in (1, 2):  # each worker dies before it reports
        [claimed] = claim(api, lease_s=1)
        assert claimed["attempt"] == attempt
        WebhookDelivery.objects.filter(pk=claimed["id"]).update(next_attempt_at=timezone.now())
    assert claim(api) == []
    row = WebhookDelivery.objects.get(pk=claimed["id"])
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "no outcome came back from its last attempt")


def test_only_the_gateways_refusals_may_be_posted_as_events(api):
    register(api, events=["alias.moved"])
    for event_type in ("alias.moved", "rollback.auto", "nonsense"):
        answer = api.post("/events", {"type": event_type, "data": {}}, content_type="application/json")
        assert answer.status_code == 400
    nobody = api.post("/events", {"type": "gate.refused", "data": {}}, content_type="application/json").json()
    assert nobody == {"id": None}, "no webhook listens: no event is kept"


def square(size: int, top: int, left: int, stroke: int = 28) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[top:top + size, left:left + size] = 255
    if stroke < size:
        image[top + stroke:top + size - stroke, left + stroke:left + size - stroke] = 0
    return image


def test_input_statistics_measure_ink_box_offset_and_stroke_width():
    stats = drift.input_statistics(np.stack([square(10, 9, 9), square(10, 0, 0), square(20, 4, 4, stroke=2),
                                             np.zeros((28, 28), np.uint8)]))
    assert stats["ink_fraction"][0] == pytest.approx(100 / 784) and stats["bbox_size"].tolist() == [10, 10, 20, 0]
    assert stats["centre_offset"][0] == pytest.approx(0.0) and stats["centre_offset"][1] == pytest.approx(9 * 2 ** 0.5)
    assert stats["stroke_width"][2] == pytest.approx(2 * 144 / 144, rel=0.3), "a 2-pixel stroke is about 2 wide"
    assert stats["stroke_width"][2] < stats["stroke_width"][0]


def test_psi_is_zero_for_the_same_population_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    assert drift.psi(reference, rng.normal(0, 1, 2000)) < 0.02
    same_at_the_least = [drift.psi(reference, rng.normal(0, 1, drift.MIN_SAMPLE)) for _ in range(20)]
    assert max(same_at_the_least) < drift.MODERATE, "the smallest day judged does not drift by chance"
    assert drift.psi(reference, rng.normal(1.5, 1, 2000)) > drift.SIGNIFICANT
    assert drift.mix_psi(np.ones(10), np.ones(10)) == 0.0


def test_traffic_unlike_the_training_data_drifts_and_raises_one_alert_a_day(api, model_version, monkeypatch):
    monkeypatch.setattr(drift, "TODAY_EVERY_S", 0.0)
    register(api, events=["drift.alert"])
    promote(api, "production", model_version["id"])
    assert api.get("/drift/production").json() == {"drift": None}, "nothing asked today"
    record(api, model_version["id"], [1] * 30)  # blank 28x28 inputs: nothing like the training digits
    few = api.get("/drift/production").json()["drift"]
    assert (few["level"], few["predictions"]) == ("insufficient", 30), "30 predictions say nothing yet"
    assert claim(api) == [], "no alert on a handful"
    for _ in range(4):
        record(api, model_version["id"], [1] * 50)
    today = api.get("/drift/production").json()["drift"]
    assert today["level"] == "significant" and today["predictions"] == 230 and today["model_version"] == model_version["id"]
    assert today["inputs"]["ink_fraction"]["mean"] == 0.0 and today["outputs"]["class_mix"][1] == 1.0
    assert today["outputs"]["confidence_psi"] is not None, "its first day had enough to compare confidences with"
    api.get("/drift/production")
    alerts = claim(api)
    assert [d["event"]["type"] for d in alerts] == ["drift.alert"], "once per version and day"
    days = api.get(f"/models/{model_version['id']}/drift", {"days": 3}).json()
    assert [d["day"] for d in days["days"]] == [today["day"]] and days["reference"]["first_day"] == today["day"]
    assert api.get(f"/models/{model_version['id']}/drift", {"days": "99"}).status_code == 400
    text = api.get("/metrics").content.decode()
    assert f'rollout_drift{{model_version="v{model_version["id"]}"}}' in text
