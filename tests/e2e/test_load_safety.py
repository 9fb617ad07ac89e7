"""Under load with real processes: stopping the gateway mid-load loses no acknowledged prediction, and
an overloaded gateway answers 503 with Retry-After at once instead of queueing into timeouts."""

from __future__ import annotations

import threading
import time

import psycopg2
import requests

from tests.e2e.support import Api, sample_digits


def acknowledged_in_history(platform, ids: list[int]) -> int:
    with psycopg2.connect(platform.database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM registry_prediction WHERE id = ANY(%s)", (ids,))
        return cursor.fetchone()[0]


def hammer(url: str, headers: dict, body: dict, stop: threading.Event, answers: list, clients: int) -> list:
    def client():
        session = requests.Session()
        while not stop.is_set():
            try:
                response = session.post(url, json=body, headers=headers, timeout=10)
            except requests.RequestException:
                answers.append((0, None, None))
                time.sleep(0.05)
                continue
            ident = response.json().get("id") if response.status_code == 201 else None
            answers.append((response.status_code, ident, response.headers.get("Retry-After")))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def test_stopping_the_gateway_under_load_loses_no_acknowledged_prediction(platform):
    platform.ensure_production_model()
    viewer = Api(platform.url("gateway"), "viewer", platform.demo_password)
    answers: list = []
    stop = threading.Event()
    threads = hammer(platform.url("gateway") + "/api/predictions", viewer.headers,
                     {"pixels": sample_digits()[0][3].tolist()}, stop, answers, clients=12)
    try:
        time.sleep(2.0)
        platform.stop_service("gateway")  # SIGTERM: in-flight predictions finish, batches are flushed
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        platform.start_service("gateway")
        platform.wait_ready("gateway")
    ids = [ident for status, ident, _ in answers if status == 201]
    assert len(ids) > 50, f"the load did not get going: {len(ids)} predictions"
    assert acknowledged_in_history(platform, ids) == len(ids), "an acknowledged prediction is missing"
    assert {status for status, _, _ in answers} <= {201, 503, 0}


def test_an_overloaded_gateway_answers_503_with_retry_after_at_once_and_recovers(platform, monkeypatch):
    platform.ensure_production_model()
    platform.stop_service("gateway")
    platform.env["GATEWAY_PREDICT_MAX_IN_FLIGHT"] = "4"
    try:
        platform.start_service("gateway")
        platform.wait_ready("gateway")
        viewer = Api(platform.url("gateway"), "viewer", platform.demo_password)
        answers: list = []
        stop = threading.Event()
        threads = hammer(platform.url("gateway") + "/api/predictions", viewer.headers,
                         {"pixels": sample_digits()[0][4].tolist()}, stop, answers, clients=24)
        time.sleep(4.0)
        stop.set()
        for thread in threads:
            thread.join()
        statuses = {status for status, _, _ in answers}
        refused = [retry for status, _, retry in answers if status == 503]
        assert statuses == {201, 503}, f"only answers and fast refusals: {statuses}"
        assert refused and all(retry == "1" for retry in refused)
        ids = [ident for status, ident, _ in answers if status == 201]
        assert acknowledged_in_history(platform, ids) == len(ids)
        time.sleep(0.5)
        assert viewer.post("/api/predictions", {"pixels": sample_digits()[0][4].tolist()}).status_code == 201
    finally:
        platform.env.pop("GATEWAY_PREDICT_MAX_IN_FLIGHT")
        platform.stop_service("gateway")
        platform.start_service("gateway")
        platform.wait_ready("gateway")
