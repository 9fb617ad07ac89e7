"""Webhooks with real processes and a real HTTPS receiver on loopback: an alias move delivers one signed event; a
receiver that fails twice gets it on the third attempt; a receiver that hangs does not delay the promotion."""

from __future__ import annotations

import json
import time

import pytest
import requests

from kit.webhook_receiver import Receiver
from kit.webhooks import verify
from tests.e2e.support import Api, sample_digits


@pytest.fixture
def hook(platform, tmp_path):
    """(receiver, its webhook for alias moves, admin): the webhooks worker trusts the receiver's certificate."""
    production = platform.ensure_production_model()  # the first model's promotion is no event of these tests
    admin = Api(platform.url("gateway"), "admin", platform.demo_password)
    if admin.get("/api/models").json()["count"] < 2:  # the candidate alias moves between two versions
        engineer = Api(platform.url("gateway"), "engineer", platform.demo_password)
        started = engineer.post("/api/scenarios/train-model", {
            "dataset_id": production["datasets"][0], "architecture": "linear", "hyperparameters": {"epochs": 1}})
        assert engineer.wait_for_run(started.json()["id"])["status"] == "succeeded"
    receiver = Receiver(tmp_path)
    platform.stop_service("ml_webhooks")
    platform.env["ML_WEBHOOK_CA_BUNDLE"] = str(receiver.cert)
    platform.start_worker("ml_webhooks")
    made = admin.post("/api/webhooks", {"url": receiver.url, "events": ["alias.moved"]})
    assert made.status_code == 201, made.text
    yield receiver, made.json(), admin
    requests.delete(f"{platform.url('gateway')}/api/webhooks/{made.json()['id']}", headers=admin.headers, timeout=10)
    receiver.close()


def move_candidate(platform, admin: Api) -> tuple[int, float]:
    """Point the candidate alias at another version (no gate on the candidate; pointing it where it is moves
    nothing): (the version, seconds it took)."""
    candidate = (admin.get("/api/rollout").json()["candidate"] or {}).get("id")
    version = next(v["id"] for v in admin.get("/api/models").json()["results"] if v["id"] != candidate)
    started = time.monotonic()
    moved = admin.post(f"/api/models/{version}/promote", {"alias": "candidate", "reason": "webhook test"})
    assert moved.status_code == 200, moved.text
    return version, time.monotonic() - started


def test_an_alias_move_delivers_one_event_whose_signature_verifies(platform, hook):
    receiver, webhook, admin = hook
    version, _ = move_candidate(platform, admin)
    [delivery] = receiver.wait_for(1, timeout_s=15)
    time.sleep(2)
    assert len(receiver.received) == 1, "one event, delivered once"
    assert verify(webhook["secret"], delivery.headers, delivery.body)
    body = json.loads(delivery.body)
    assert (body["type"], body["attempt"], body["data"]["alias"], body["data"]["to_version"]) == (
        "alias.moved", 1, "candidate", version)
    logged = admin.get("/api/webhooks/deliveries", params={"webhook": webhook["id"]}).json()["results"]
    assert (logged[0]["status"], logged[0]["attempts"], logged[0]["last_status_code"]) == ("delivered", 1, 200)


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt(platform, hook):
    receiver, webhook, admin = hook
    receiver.statuses = [500, 503]
    move_candidate(platform, admin)
    received = receiver.wait_for(3, timeout_s=30)
    assert [json.loads(r.body)["attempt"] for r in received] == [1, 2, 3]
    assert len({json.loads(r.body)["id"] for r in received}) == 1, "the same event each time"
    assert all(verify(webhook["secret"], r.headers, r.body) for r in received)
    gaps = [later.at - earlier.at for earlier, later in zip(received, received[1:], strict=False)]
    assert gaps[1] > gaps[0] * 1.5, f"back-off: {gaps}"
    logged = admin.get("/api/webhooks/deliveries", params={"webhook": webhook["id"]}).json()["results"][0]
    assert (logged["status"], logged["attempts"]) == ("delivered", 3)


def test_a_receiver_that_hangs_does_not_delay_the_promotion_nor_the_predictions(platform, hook):
    receiver, webhook, admin = hook
    receiver.hang_s = 30.0
    _, took = move_candidate(platform, admin)
    assert took < 1.0, f"the promotion took {took:.2f} s"
    receiver.wait_for(1, timeout_s=15)
    viewer = Api(platform.url("gateway"), "viewer", platform.demo_password)
    images, _ = sample_digits()
    started = time.monotonic()
    for n in range(10):  # while the delivery hangs
        assert viewer.post("/api/predictions", {"pixels": images[n].tolist()}).status_code == 201
    assert time.monotonic() - started < 5
    time.sleep(6)  # past the 5 s delivery timeout
    logged = admin.get("/api/webhooks/deliveries", params={"webhook": webhook["id"]}).json()["results"][0]
    assert logged["status"] == "pending" and "no answer within 5 s" in logged["last_error"]
    receiver.hang_s = 0.0
    deadline = time.monotonic() + 20
    while logged["status"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.5)
        logged = admin.get("/api/webhooks/deliveries", params={"webhook": webhook["id"]}).json()["results"][0]
    assert logged["status"] == "delivered" and logged["attempts"] >= 2
