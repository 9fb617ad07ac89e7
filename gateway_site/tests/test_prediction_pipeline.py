"""Predictions in batches (kit/batching.py, api/predicting.py) and the hot API path (api/hot.py):
batches close on size, time and shutdown; an acknowledged prediction is never lost, even when
storage is briefly down; past capacity the answer is an immediate 503 with Retry-After."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from rest_framework.authtoken.models import Token

from gateway_site.accounts import tokens
from gateway_site.api import hot
from gateway_site.scenarios import predicting
from gateway_site.wsgi import application
from kit.batching import Batcher
from kit.errors import AppError, PeerUnavailable
from kit.wsgitest import call
from tests.support import DIGIT, token_of


@pytest.fixture(autouse=True)
def fresh_pipeline():
    predicting.close()
    tokens.forget_tokens()
    yield
    predicting.close()


class Recorder:
    """A `handle` that records each batch it was given."""

    def __init__(self):
        self.batches: list[list] = []

    def __call__(self, items):
        self.batches.append(list(items))
        return [item * 10 for item in items]


def submit_all(batcher: Batcher, items) -> list:
    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(batcher.submit, items))


def test_only_token_json_predictions_skip_django():
    assert set(application.routes) == {("POST", "/api/predictions")}, "the hot routes, pinned"
    assert hot.applies({"HTTP_AUTHORIZATION": "Token abc", "CONTENT_TYPE": "application/json"})
    assert not hot.applies({"HTTP_AUTHORIZATION": "Token abc", "CONTENT_TYPE": "multipart/form-data; boundary=x"})
    assert not hot.applies({"HTTP_COOKIE": "sessionid=abc", "CONTENT_TYPE": "application/json"}), "pages keep CSRF"


def test_a_full_batch_is_handled_at_once_without_waiting_for_the_time_bound():
    recorder = Recorder()
    batcher = Batcher("test", recorder, max_items=4, max_wait_s=30)
    started = time.monotonic()
    assert submit_all(batcher, [1, 2, 3, 4]) == [10, 20, 30, 40]
    assert time.monotonic() - started < 5 and len(recorder.batches) == 1
    batcher.close()


def test_a_lone_item_is_handled_when_the_time_bound_passes():
    recorder = Recorder()
    batcher = Batcher("test", recorder, max_items=100, max_wait_s=0.2)
    started = time.monotonic()
    assert batcher.submit(7) == 70
    assert 0.2 <= time.monotonic() - started < 5 and recorder.batches == [[7]]
    batcher.close()


def test_closing_handles_every_waiting_item_then_refuses_new_ones():
    recorder = Recorder()
    batcher = Batcher("test", recorder, max_items=100, max_wait_s=60)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.submit, n) for n in (1, 2, 3)]
        while batcher.waiting < 3:
            time.sleep(0.01)
        started = time.monotonic()
        batcher.close()
        assert sorted(f.result(timeout=5) for f in futures) == [10, 20, 30]
    assert time.monotonic() - started < 5, "closing does not wait for the 60 s time bound"
    with pytest.raises(AppError) as refused:
        batcher.submit(4)
    assert refused.value.status == 503


def test_a_batch_whose_handling_failed_fails_each_of_its_callers_and_the_next_batch_works():
    calls = []

    def handle(items):
        calls.append(items)
        if len(calls) == 1:
            raise AppError("invalid", "bad batch")
        return items

    batcher = Batcher("test", handle, max_items=10, max_wait_s=0)
    with pytest.raises(AppError):
        batcher.submit(1)
    assert batcher.submit(2) == 2
    batcher.close()


def test_items_handed_in_together_are_handled_in_one_call_never_split():
    recorder = Recorder()
    batcher = Batcher("test", recorder, max_items=4, max_wait_s=0.2)
    with ThreadPoolExecutor(2) as pool:
        single = pool.submit(batcher.submit, 1)
        while batcher.waiting < 1:
            time.sleep(0.01)
        together = pool.submit(batcher.submit_many, [2, 3, 4, 5, 6])
        assert single.result(timeout=5) == 10 and together.result(timeout=5) == [20, 30, 40, 50, 60]
    assert recorder.batches == [[1], [2, 3, 4, 5, 6]], "five items past a batch of four go alone, whole"
    batcher.close()


def test_a_batch_request_is_recorded_through_the_history_batcher_with_request_keys(fake_peers, settings):
    settings.HISTORY_RETRY_S = 5
    storage = fake_peers["storage"]
    storage.down = True
    threading.Timer(0.4, lambda: setattr(storage, "down", False)).start()
    body = {"images": [DIGIT, {"pixels": "blank"}, DIGIT]}
    answer = predicting.classify_and_record_batch(username="viewer", payload=body)
    recorded, refused, recorded_too = answer["results"]
    assert "error" in refused and "id" not in refused
    assert sorted(p["id"] for p in storage.predictions) == sorted([recorded["id"], recorded_too["id"]])
    assert all(p["user"] == "viewer" for p in storage.predictions)
    assert sorted(row["id"] for row in storage.request_keys.values()) == sorted(p["id"] for p in storage.predictions)
    assert recorded["created_at"] and recorded_too["created_at"]


def test_the_pipeline_shares_calls_between_concurrent_predictions(fake_peers, settings, monkeypatch):
    settings.PREDICT_BATCH_WAIT_S = 0.2
    calls = []
    original = fake_peers["ml"].predict_batch
    monkeypatch.setattr(fake_peers["ml"], "predict_batch", lambda payload, timeout=None: calls.append(payload) or original(payload))
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: predicting.predict_and_record(username="viewer", body=DIGIT), range(16)))
    assert len({a["id"] for a in answers}) == 16 and len(fake_peers["storage"].predictions) == 16
    assert len(calls) < 16 and sum(len(c["images"]) for c in calls) == 16


def test_a_brief_storage_outage_delays_answers_and_loses_none(fake_peers, settings):
    settings.HISTORY_RETRY_S = 5
    storage = fake_peers["storage"]
    storage.down = True
    threading.Timer(0.4, lambda: setattr(storage, "down", False)).start()
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: predicting.predict_and_record(username="viewer", body=DIGIT), range(20)))
    ids = [a["id"] for a in answers]
    assert len(set(ids)) == 20 and sorted(ids) == sorted(p["id"] for p in storage.predictions)


def test_a_write_whose_answer_was_lost_is_retried_and_recorded_once(fake_peers, settings, monkeypatch):
    settings.HISTORY_RETRY_S = 5
    storage = fake_peers["storage"]
    write = storage.create_predictions
    attempts = []

    def commits_then_times_out(items):
        attempts.append(len(items))
        stored = write(items)
        if len(attempts) == 1:
            raise PeerUnavailable("storage_svc", "no answer within 1.5 s")
        return stored

    monkeypatch.setattr(storage, "create_predictions", commits_then_times_out)
    answer = predicting.predict_and_record(username="viewer", body=DIGIT)
    assert len(attempts) == 2 and [p["id"] for p in storage.predictions] == [answer["id"]]


def test_an_outage_longer_than_the_retry_window_is_a_503_and_nothing_is_acknowledged(api_as, fake_peers, settings):
    settings.HISTORY_RETRY_S = 0.3
    fake_peers["storage"].down = True
    started = time.monotonic()
    answer = api_as("viewer").post("/api/predictions", DIGIT, format="json")
    assert answer.status_code == 503 and answer.json()["error"]["details"] == {"service": "storage_svc"}
    assert time.monotonic() - started < 3 and answer["Retry-After"]
    assert fake_peers["storage"].predictions == []


def test_past_the_in_flight_limit_the_answer_is_an_immediate_503_with_retry_after(users, fake_peers, settings, monkeypatch):
    settings.PREDICT_MAX_IN_FLIGHT = 2
    release = threading.Event()
    original = fake_peers["ml"].predict_batch
    monkeypatch.setattr(fake_peers["ml"], "predict_batch", lambda payload, timeout=None: release.wait(10) and original(payload))
    headers = token_of(users, "viewer")
    with ThreadPoolExecutor(2) as pool:
        slow = [pool.submit(predicting.predict_and_record, username="viewer", body=DIGIT) for _ in range(2)]
        while predicting._parts()[2].inside < 2:
            time.sleep(0.01)
        started = time.monotonic()
        refused = call(application, "POST", "/api/predictions", DIGIT, headers=headers)
        assert refused.status == 503 and refused.json()["error"]["code"] == "overloaded"
        assert refused.headers["Retry-After"] == "1" and time.monotonic() - started < 1
        release.set()
        assert all("id" in f.result(timeout=10) for f in slow)
    assert call(application, "POST", "/api/predictions", DIGIT, headers=headers).status == 201, "it recovers by itself"


def test_the_hot_api_path_records_the_prediction_and_checks_the_token_and_role(users, fake_peers, django_user_model):
    answer = call(application, "POST", "/api/predictions", DIGIT, headers=token_of(users, "viewer"))
    assert answer.status == 201 and answer.json()["digit"] == 7
    assert fake_peers["storage"].predictions[0]["id"] == answer.json()["id"]
    assert fake_peers["storage"].predictions[0]["user"] == "viewer"
    wrong = call(application, "POST", "/api/predictions", DIGIT, headers={"Authorization": "Token nope"})
    assert wrong.status == 401 and wrong.json()["error"]["code"] == "authentication_failed"
    nobody = django_user_model.objects.create_user(username="no_role", password="x-long-password-1")
    users["no_role"] = nobody
    assert call(application, "POST", "/api/predictions", DIGIT, headers=token_of(users, "no_role")).status == 403
    blank = call(application, "POST", "/api/predictions", {"pixels": "blank"}, headers=token_of(users, "viewer"))
    assert blank.status == 422 and blank.json()["error"]["code"] == "blank_image"
    extra = call(application, "POST", "/api/predictions", {**DIGIT, "x": 1}, headers=token_of(users, "viewer"))
    assert extra.status == 400 and extra.json()["error"]["details"] == {"x": "unknown field"}
    assert len(fake_peers["storage"].predictions) == 1, "refused requests record nothing"


def test_a_revoked_token_stops_working_at_once_in_the_process_that_revoked_it(users, fake_peers):
    headers = token_of(users, "viewer")
    assert call(application, "POST", "/api/predictions", DIGIT, headers=headers).status == 201
    assert call(application, "DELETE", "/api/auth/token", b"", headers=headers).status == 204
    assert call(application, "POST", "/api/predictions", DIGIT, headers=headers).status == 401


def test_requests_without_a_token_or_with_an_upload_still_go_through_django(users, fake_peers):
    refused = call(application, "POST", "/api/predictions", DIGIT)
    assert refused.status == 401 and refused.json()["error"]["code"] == "not_authenticated"
    upload = call(application, "POST", "/api/predictions", b"--x--", headers=token_of(users, "viewer"),
                  content_type="multipart/form-data; boundary=x")
    assert upload.status == 400 and upload.json()["error"]["details"] == {"image": "required"}


def test_a_chunked_body_is_read_whole_on_the_hot_path_and_in_django_and_capped(users, fake_peers, settings):
    headers = token_of(users, "viewer")
    hot = call(application, "POST", "/api/predictions", DIGIT, headers=headers, chunked=True)
    assert hot.status == 201 and hot.json()["digit"] == 7
    token = call(application, "POST", "/api/auth/token", {"username": "viewer", "password": "wrong-password"}, chunked=True)
    assert token.status == 401 and token.json()["error"]["code"] == "invalid_credentials", "Django saw the body"
    huge = call(application, "POST", "/api/predictions", b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
                headers=headers, chunked=True)
    assert huge.status == 413 and huge.json()["error"]["code"] == "too_large"
    to_django = call(application, "POST", "/api/samples", b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1),
                     headers=headers, chunked=True)
    assert to_django.status == 413 and to_django.headers["X-Request-ID"], "refused, logged and traced like the rest"
    assert len(fake_peers["storage"].predictions) == 1


@pytest.mark.django_db(transaction=True)
def test_an_expired_token_is_checked_once_however_many_requests_wait_and_no_connection_is_kept(
        django_user_model, monkeypatch):
    """Under load every thread meets the expired entry at once: one database check, not one connection per thread
    (2 processes x 96 threads went past PostgreSQL's 100 connections)."""
    from django.contrib.auth.models import Group
    from django.db import connection

    viewer = django_user_model.objects.create_user(username="busy_viewer", password="x-long-password-1")
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    key = Token.objects.create(user=viewer).key
    checks = []
    original = tokens.has_role

    def slow_has_role(user, role):
        checks.append(user.get_username())
        time.sleep(0.05)  # the other requests arrive while the check runs
        return original(user, role)

    monkeypatch.setattr(tokens, "has_role", slow_has_role)
    request = type("Request", (), {"header": lambda self, name: f"Token {key}"})()
    start = threading.Barrier(16)

    def ask():
        start.wait()
        return hot.token_viewer(request)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: ask(), range(16)))
    assert answers == ["busy_viewer"] * 16 and checks == ["busy_viewer"]
    tokens.forget_tokens()
    assert hot.token_viewer(request) == "busy_viewer" and len(checks) == 2
    assert connection.connection is None, "the hot path keeps no database connection between checks"


@pytest.mark.django_db(transaction=True)
def test_a_slow_token_check_does_not_hold_up_another_tokens(django_user_model, monkeypatch):
    from django.contrib.auth.models import Group

    keys = {}
    for name in ("slow_viewer", "quick_viewer"):
        user = django_user_model.objects.create_user(username=name, password="x-long-password-1")
        user.groups.add(Group.objects.get_or_create(name="viewer")[0])
        keys[name] = Token.objects.create(user=user).key
    while tokens.stripe(keys["slow_viewer"]) == tokens.stripe(keys["quick_viewer"]):  # checked beside each other
        token = Token.objects.get(key=keys["quick_viewer"])
        token.delete()
        keys["quick_viewer"] = Token.objects.create(user=token.user).key
    tokens.forget_tokens()
    started, release = threading.Event(), threading.Event()
    original = tokens.has_role

    def has_role(user, role):
        if user.get_username() == "slow_viewer":
            started.set()
            release.wait(10)  # the slow check holds until the other one is done
        return original(user, role)

    monkeypatch.setattr(tokens, "has_role", has_role)

    def request(name):
        return type("Request", (), {"header": lambda self, header: f"Token {keys[name]}"})()

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(hot.token_viewer, request("slow_viewer"))
        assert started.wait(5)
        quick = pool.submit(hot.token_viewer, request("quick_viewer"))
        try:
            assert quick.result(timeout=5) == "quick_viewer", "the other token's check waited for the slow one"
        finally:
            release.set()
        assert slow.result() == "slow_viewer"


def test_a_new_user_leaves_the_remembered_token_checks_alone(users, fake_peers, django_user_model):
    assert call(application, "POST", "/api/predictions", DIGIT, headers=token_of(users, "viewer")).status == 201
    assert tokens._checked
    django_user_model.objects.create_user(username="newcomer", password="x-long-password-1")
    assert tokens._checked, "creating a user has no token to forget"
    users["viewer"].save()
    assert not tokens._checked, "a changed user's checks are forgotten"
