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
    moved = delivery(receiver.url.replace("127.0.0.1", "localhost"))  # the certificate names 127.0.0.1 only
    receiver.hang_s = 0.0
    assert webhooks.send(moved) == (None, "could not connect: SSLError"), "the name is checked, not the address"


class Outbox:
    """storage_svc's side of the claim and the outcome, in memory."""

    def __init__(self, due):
        self.due, self.results = list(due), {}

    def claim_deliveries(self, *, limit, lease_s):
        claimed, self.due = self.due[:limit], self.due[limit:]
        return claimed

    def delivery_result(self, delivery_id, *, attempt, status_code, error):
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


def test_a_receiver_that_drips_its_answer_is_cut_off_and_the_tick_goes_on(receiver, tmp_path, monkeypatch):
    receiver.drip_s = 0.5  # each byte within the 1 s read timeout; the answer would take ~20 s
    outbox = Outbox([delivery(receiver.url, delivery_id=1)])
    monkeypatch.setattr(webhooks.peers, "storage", lambda: outbox)
    started = time.monotonic()
    webhooks.deliver_due()
    assert time.monotonic() - started < 4.0
    assert outbox.results == {1: (None, "no complete answer within 3 s")}


def test_addresses_that_hide_a_private_ipv4_address_in_ipv6_are_refused():
    from kit.webhooks import destination_problem

    for address in ("::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::a9fe:a9fe", "fe80::1", "fc00::1"):
        def resolve(host, port, type=None, address=address):
            return [(None, None, None, None, (address, port))]
        assert "private" in destination_problem("https://hooks.example.com/x", allow_private=False, resolve=resolve)
    public = lambda host, port, type=None: [(None, None, None, None, ("2606:4700::1", port))]  # noqa: E731
    assert destination_problem("https://hooks.example.com/x", allow_private=False, resolve=public) is None


@pytest.mark.django_db
def test_the_chain_of_ticks_is_one_whoever_starts_it_and_finished_ticks_are_forgotten(monkeypatch, settings):
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    webhooks.ensure_tick()
    webhooks.ensure_tick(after_s=5)
    ticks = DBTaskResult.objects.filter(queue_name="webhooks", task_path=webhooks.webhooks_tick.module_path)
    assert ticks.count() == 1
    ticks.update(status=TaskResultStatus.SUCCESSFUL)  # as if it had run
    looked = []
    monkeypatch.setattr(webhooks, "deliver_due", lambda: looked.append(1) or 0)
    monkeypatch.setattr(webhooks, "TICK_SPAN_S", 0.35)
    settings.WEBHOOK_TICK_S = 0.1
    webhooks.webhooks_tick.call()
    assert len(looked) >= 3, "a tick looks several times before it hands over"
    assert [t.status for t in ticks.all()] == [TaskResultStatus.READY], "the next is queued, the finished forgotten"
