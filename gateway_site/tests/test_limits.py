"""Per-user rate limits (api/limits.py): counted in the gateway database, so every process draws from one allowance."""

from __future__ import annotations

import logging
import threading
import time

import psycopg2
import pytest
from django.db import connection

from gateway_site.scenarios import limits
from gateway_site.wsgi import application
from kit.wsgitest import call
from tests.support import DIGIT, token_of


def other_connection():
    """A connection of another process to the gateway's test database (outside this test's transaction)."""
    database = connection.settings_dict
    return psycopg2.connect(dbname=database["NAME"], host=database["HOST"], port=database["PORT"],
                            user=database["USER"], password=database["PASSWORD"])


@pytest.fixture
def limited(settings):
    """Turn limits on; the counts (committed by the limiter's own connection) are wiped before and after."""

    def wipe():
        limits.close()
        limits._refused_until.clear()
        with other_connection() as database, database.cursor() as cursor:
            cursor.execute("DELETE FROM api_ratecounter")
        database.close()

    def set_limits(window_s: float = 60, **allowed):
        settings.RATE_WINDOW_S = window_s
        settings.RATE_LIMITS = {"predictions": 0, "uploads": 0, "scenarios": 0, **allowed}

    wipe()
    yield set_limits
    wipe()


def a_new_process():
    """What another gateway process knows: nothing but the database (its own connection, no refusals remembered)."""
    limits.close()
    limits._refused_until.clear()


def used(key: str) -> int:
    with other_connection() as database, database.cursor() as cursor:
        cursor.execute("SELECT used FROM api_ratecounter WHERE key = %s", [key])
        return cursor.fetchone()[0]


def test_predictions_past_the_allowance_are_refused_with_429_and_retry_after_and_not_recorded(users, fake_peers, limited):
    limited(predictions=3)
    viewer = token_of(users, "viewer")
    answers = [call(application, "POST", "/api/predictions", DIGIT, headers=viewer) for _ in range(5)]
    assert [a.status for a in answers] == [201, 201, 201, 429, 429]
    refused = answers[3]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.json()["error"]["details"] == {"limit": "predictions", "allowed": 3, "window_s": 60}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(fake_peers["storage"].predictions) == 3, "a refused prediction is neither classified nor recorded"
    other = call(application, "POST", "/api/predictions", DIGIT, headers=token_of(users, "other_viewer"))
    assert other.status == 201, "the allowance is each user's own"


def test_the_allowance_is_shared_by_every_process_and_starts_again_when_the_window_ends(users, fake_peers, limited):
    limited(window_s=1.5, predictions=2)
    viewer = token_of(users, "viewer")
    assert call(application, "POST", "/api/predictions", DIGIT, headers=viewer).status == 201
    a_new_process()
    assert call(application, "POST", "/api/predictions", DIGIT, headers=viewer).status == 201
    a_new_process()
    assert call(application, "POST", "/api/predictions", DIGIT, headers=viewer).status == 429
    assert used("predictions:viewer") == 3, "a refused request counts too"
    threading.Event().wait(1.6)
    assert call(application, "POST", "/api/predictions", DIGIT, headers=viewer).status == 201


def test_a_batch_counts_each_of_its_images(api_as, fake_peers, limited):
    limited(predictions=5)
    viewer = api_as("viewer")
    three = {"images": [DIGIT] * 3}
    assert viewer.post("/api/predictions/batch", three, format="json").status_code == 201
    refused = viewer.post("/api/predictions/batch", three, format="json")
    assert refused.status_code == 429 and refused.json()["error"]["details"]["limit"] == "predictions"


def test_uploads_and_scenario_starts_have_limits_of_their_own(api_as, fake_peers, limited):
    limited(uploads=1, scenarios=1)
    viewer, engineer = api_as("viewer"), api_as("engineer")
    assert viewer.post("/api/samples", {"label": 3, **DIGIT}, format="json").status_code == 201
    assert viewer.post("/api/samples", {"label": 3, **DIGIT}, format="json").status_code == 429
    assert engineer.post("/api/scenarios/train-model", {"dataset_id": 1}, format="json").status_code == 202
    refused = engineer.post("/api/scenarios/train-model", {"dataset_id": 1}, format="json")
    assert refused.status_code == 429 and refused.json()["error"]["details"]["limit"] == "scenarios"
    assert viewer.post("/api/predictions", DIGIT, format="json").status_code == 201, "predictions are not limited here"


def test_one_user_runs_one_batch_at_a_time_across_processes(api_as, fake_peers, limited, settings):
    limited(predictions=100)
    lock_id = limits.batch_lock_id("viewer")
    with other_connection() as other_process:
        with other_process.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [lock_id])  # another process's batch of this user runs
        busy = api_as("viewer").post("/api/predictions/batch", {"images": [DIGIT]}, format="json")
        assert busy.status_code == 429 and busy.json()["error"]["code"] == "batch_in_progress"
        assert busy["Retry-After"] == "1"
        with other_process.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM api_ratecounter WHERE key = 'predictions:viewer'")
            assert cursor.fetchone()[0] == 0, "a batch refused as busy is not charged"
        assert api_as("other_viewer").post("/api/predictions/batch", {"images": [DIGIT]}, format="json").status_code == 201
        with other_process.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
    other_process.close()
    assert api_as("viewer").post("/api/predictions/batch", {"images": [DIGIT]}, format="json").status_code == 201


def test_when_the_database_cannot_count_predictions_go_through_and_it_is_logged(users, fake_peers, limited, monkeypatch,
                                                                                caplog):
    limited(predictions=1)
    monkeypatch.setattr(limits, "UPSERT", "SELECT * FROM no_such_table WHERE (key, used, window_end) IN ({rows}) AND %s < %s")
    a_new_process()
    viewer = token_of(users, "viewer")
    with caplog.at_level(logging.WARNING, logger="gateway_site.scenarios.limits"):
        assert [call(application, "POST", "/api/predictions", DIGIT, headers=viewer).status for _ in range(3)] == [201] * 3
    assert "rate limits not checked" in caplog.text


def test_a_batch_that_failed_releases_the_users_batch_lock(api_as, fake_peers, limited):
    limited()
    viewer = api_as("viewer")
    fake_peers["ml"].down = True
    assert viewer.post("/api/predictions/batch", {"images": [DIGIT]}, format="json").status_code == 503
    # another process can take it (PostgreSQL's advisory locks are re-entrant in the session that holds them)
    with other_connection() as database, database.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [limits.batch_lock_id("viewer")])
        assert cursor.fetchone()[0], "the failed batch still holds the user's lock"
    database.close()
    fake_peers["ml"].down = False
    assert viewer.post("/api/predictions/batch", {"images": [DIGIT]}, format="json").status_code == 201


def test_when_the_database_stalls_a_prediction_waits_at_most_a_second_for_its_count(users, fake_peers, limited,
                                                                                    monkeypatch):
    limited(predictions=1)
    release = threading.Event()
    monkeypatch.setattr(limits, "_charge_many", lambda items: release.wait(5) and [None] * len(items))
    a_new_process()
    started = time.monotonic()
    answer = call(application, "POST", "/api/predictions", DIGIT, headers=token_of(users, "viewer"))
    assert answer.status == 201 and time.monotonic() - started < 2.5
    release.set()


def test_concurrent_charges_of_one_allowance_let_exactly_the_allowance_through(db, limited):
    """Batches of several charges (the arithmetic of one upsert for many callers), and two users' keys in each."""
    limited(predictions=10)
    start = threading.Barrier(24)
    passed: list[str] = []

    def charge(username):
        start.wait()
        try:
            limits.charge(username, "predictions")
            passed.append(username)
        except limits.RateLimited:
            pass

    threads = [threading.Thread(target=charge, args=(name,)) for name in ["ann", "bob"] * 12]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(passed) == ["ann"] * 10 + ["bob"] * 10
    assert used("predictions:ann") > 10 and used("predictions:bob") > 10  # a late thread is refused before counting
