"""Webhook deliveries from the webhooks queue: signed HTTPS posts to a real receiver on loopback, destinations checked
when sending, failures reported for storage to retry, and a hanging receiver holding up only its own delivery."""

import json
import time

import pytest

from kit.webhook_receiver import Receiver
from kit.webhooks import DELIVERY_HEADER, EVENT_HEADER, verify
from ml_svc import webhooks


@pytest.fixture
def receiver(tmp_path, settings):
    made = Receiver(tmp_path)
    settings.WEBHOOK_CA_BUNDLE = str(made.cert)  # trust the receiver's self-signed certificate
    settings.WEBHOOK_TIMEOUT_S = 1.0
    yield made
    made.close()


def delivery(url: str, *, delivery_id: int = 3, allow_private: bool = True, secret: str = "s" * 64) -> dict:
    return {"id": delivery_id, "attempt": 1, "url": url, "secret": secret, "allow_private": allow_private,
            "event": {"id": 9, "type": "alias.moved", "created_at": "2026-12-03T10:00:00Z",
                      "data": {"alias": "production", "to_version": 4}}}


def test_a_delivery_is_a_signed_json_post_the_receiver_can_verify(receiver):
    assert webhooks.send(delivery(receiver.url)) == (200, "")
    [got] = receiver.received
    assert verify("s" * 64, got.headers, got.body)
    assert not verify("t" * 64, got.headers, got.body), "another secret does not verify"
    assert not verify("s" * 64, got.headers, got.body + b" "), "nor a changed body"
    assert not verify("s" * 64, got.headers, got.body, now=time.time() + 3600), "nor an old delivery, replayed"
    assert (got.headers[EVENT_HEADER], got.headers[DELIVERY_HEADER]) == ("alias.moved", "3")
    body = json.loads(got.body)
    assert (body["type"], body["id"], body["delivery"], body["data"]["to_version"]) == ("alias.moved", 9, 3, 4)


def test_a_private_destination_is_refused_when_sending_unless_allowed(receiver):
    code, error = webhooks.send(delivery(receiver.url, allow_private=False))
    assert code is None and error.startswith("refused:") and "127.0.0.1" in error
    assert receiver.received == [], "nothing was sent"


def test_failures_are_reported_with_their_reason(receiver, tmp_path, settings):
    receiver.statuses = [500, 302]
    assert webhooks.send(delivery(receiver.url)) == (500, "answered 500")
    assert webhooks.send(delivery(receiver.url)) == (302, "answered 302"), "a redirect is not followed"
    settings.WEBHOOK_CA_BUNDLE = ""  # the system's CAs do not know the self-signed certificate
    assert webhooks.send(delivery(receiver.url)) == (None, "could not connect: SSLError")
    receiver.hang_s = 3.0
    settings.WEBHOOK_CA_BUNDLE = str(receiver.cert)
    started = time.monotonic()
    assert webhooks.send(delivery(receiver.url)) == (None, "no answer within 1 s")
    assert time.monotonic() - started < 2.5


class Outbox:
    """storage_svc's side of the claim and the outcome, in memory."""

    def __init__(self, due):
        self.due, self.results = list(due), {}

    def claim_deliveries(self, *, limit, lease_s):
        claimed, self.due = self.due[:limit], self.due[limit:]
        return claimed

    def delivery_result(self, delivery_id, *, status_code, error):
        self.results[delivery_id] = (status_code, error)


def test_a_hanging_receiver_holds_up_only_its_own_delivery(receiver, tmp_path, monkeypatch):
    (tmp_path / "slow").mkdir()
    slow = Receiver(tmp_path / "slow", hang_s=3.0)
    try:
        # one CA file trusts both receivers' certificates
        bundle = tmp_path / "both.pem"
        bundle.write_bytes(receiver.cert.read_bytes() + slow.cert.read_bytes())
        from django.conf import settings

        settings.WEBHOOK_CA_BUNDLE = str(bundle)
        outbox = Outbox([delivery(slow.url, delivery_id=1), delivery(receiver.url, delivery_id=2)])
        monkeypatch.setattr(webhooks.peers, "storage", lambda: outbox)
        started, sent_at = time.monotonic(), time.time()
        assert webhooks.deliver_due() == 2
        assert time.monotonic() - started < 2.5, "sent side by side, each within its timeout"
        assert outbox.results == {1: (None, "no answer within 1 s"), 2: (200, "")}
        assert receiver.received[0].at - sent_at < 0.5, "the good receiver did not wait for the slow one"
    finally:
        slow.close()


@pytest.mark.django_db
def test_the_chain_of_ticks_is_one_whoever_starts_it():
    from django_tasks_db.models import DBTaskResult

    webhooks.ensure_tick()
    webhooks.ensure_tick(after_s=5)
    queued = DBTaskResult.objects.filter(queue_name="webhooks", task_path=webhooks.webhooks_tick.module_path)
    assert queued.count() == 1
