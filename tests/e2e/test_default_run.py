"""The default run is the tested run: the platform started exactly as `make run` starts it (scripts/run_local.py,
the Procfile under honcho, the default database) on free ports, then what an engineer does in the first
minutes, all at once: a default training, a collect, and 20 s of predictions from 32 connections."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time

import psycopg2
import pytest
import requests

from scripts import local_postgres, run_local
from tests.e2e.platform import DefaultRun
from tests.e2e.support import Api, sample_digits

CONNECTIONS, SECONDS = 32, 20
# One viewer sends them all: stay under the default per-user limit (6,000 predicted images in 60 s), which a fast
# machine reaches in 20 s; past it the right answer is a 429, not what this test is about.
AT_MOST = 5000


@pytest.fixture(params=["postgresql", "sqlite"])
def default_run(request, tmp_path):
    # The first model trains 15 s here instead of 45 s: a shorter wait, the same path.
    run = DefaultRun(tmp_path / "var", sqlite=request.param == "sqlite", settings={"ML_FIRST_MODEL_TIME_BUDGET_S": "15"})
    try:
        yield run
    finally:
        run.stop()


def predict_for(seconds: float, connections: int, base: str, headers: dict, at_most: int) -> list[int | str]:
    """`connections` clients, each posting predictions one after another for `seconds` or until `at_most` were
    sent in all; every status seen (with the body, when it is not a 201)."""
    statuses: list[int | str] = []
    digits = sample_digits()[0]
    deadline = time.monotonic() + seconds
    tickets = iter(range(at_most))
    lock = threading.Lock()

    def ticket() -> bool:
        with lock:
            return next(tickets, None) is not None

    def client(index: int) -> None:
        session = requests.Session()
        body = {"pixels": digits[index].tolist()}
        while time.monotonic() < deadline and ticket():
            try:
                answer = session.post(f"{base}/api/predictions", json=body, headers=headers, timeout=30)
                statuses.append(answer.status_code if answer.status_code == 201 else f"{answer.status_code} {answer.text}")
            except requests.RequestException as exc:
                statuses.append(type(exc).__name__)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_training_collect_and_predictions_at_once_on_the_default_run(default_run):
    started = time.monotonic()
    viewer, first_prediction = default_run.wait_for_first_prediction()
    output = default_run.output.read_text()
    expected = "SQLite files" if default_run.sqlite else f"PostgreSQL: $DATABASE_URL, databases {default_run.database_name}"
    assert f"Database: {expected}" in output, "make run says which database it uses"
    print(f"\nfirst prediction {first_prediction - started:.1f} s after start ({'SQLite' if default_run.sqlite else 'PostgreSQL'})")
    engineer = Api(default_run.gateway, "engineer", default_run.password)
    dataset_id = engineer.get("/api/datasets").json()["results"][0]["id"]
    training = engineer.post("/api/scenarios/train-model", {"dataset_id": dataset_id, "hyperparameters": {"time_budget_s": 20}})
    collect = engineer.post("/api/scenarios/collect-and-store", {"source": "mnist-5k", "batch_size": 500})
    assert training.status_code == 202 and collect.status_code == 202, (training.text, collect.text)
    predicting = time.monotonic()
    statuses = predict_for(SECONDS, CONNECTIONS, default_run.gateway, viewer, AT_MOST)
    rate = len(statuses) / (time.monotonic() - predicting)
    print(f"{len(statuses)} predictions from {CONNECTIONS} connections ({rate:.0f}/s) beside a training and a collect")
    assert set(statuses) == {201}, {status: statuses.count(status) for status in set(statuses)}
    for run in (training.json(), collect.json()):
        finished = engineer.wait_for_run(run["id"], timeout_s=180)
        assert finished["status"] == "succeeded", (finished["kind"], finished["error"])
    trained = engineer.get(f"/api/runs/{training.json()['id']}").json()
    took = (time.mktime(time.strptime(trained["finished_at"][:19], "%Y-%m-%dT%H:%M:%S"))
            - time.mktime(time.strptime(trained["started_at"][:19], "%Y-%m-%dT%H:%M:%S")))
    print(f"training with time_budget_s 20 took {took:.0f} s beside the load")
    assert default_run.logged_errors() == []


def test_with_no_server_answering_make_run_starts_a_private_cluster_and_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setattr(local_postgres, "LOCAL_SERVER", "postgres://postgres@127.0.0.1:9/postgres")  # nothing there
    urls, said, stop = run_local.choose_database({}, tmp_path, sqlite=False)
    try:
        assert said.startswith("PostgreSQL: a private cluster in "), said
        for url in urls.values():
            psycopg2.connect(url, connect_timeout=5).close()
        again, _, _ = run_local.choose_database({}, tmp_path, sqlite=False)
        assert again == urls, "a running cluster of a previous start is taken as it is, on its port"
    finally:
        stop()
        shutil.rmtree(said.removeprefix("PostgreSQL: a private cluster in ").split(" (port")[0], ignore_errors=True)
    assert not local_postgres.reachable(urls["storage"]), "stopped with make run"


def test_with_a_server_at_the_default_address_make_run_creates_its_databases_there(tmp_path, monkeypatch):
    server = os.environ.get("DATABASE_URL", local_postgres.LOCAL_SERVER)
    names = {"storage": f"e2e_local_{secrets.token_hex(4)}"}
    monkeypatch.setattr(local_postgres, "LOCAL_SERVER", server)
    monkeypatch.setattr(local_postgres, "DATABASES", names)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    urls, said, stop = run_local.choose_database({}, tmp_path, sqlite=False)
    try:
        assert stop is None and said.endswith(f"databases {names['storage']}, {names['storage']}_gateway, {names['storage']}_queue")
        for url in urls.values():
            psycopg2.connect(url, connect_timeout=5).close()
        run_local.forget(tmp_path)  # make clean: var/ goes, and the databases naming its blobs with it
        assert not any(local_postgres.reachable(url) for url in urls.values())
    finally:
        local_postgres.drop_databases(server, list(urls.values()))


@pytest.mark.parametrize("given, workers", [(None, 1), ("2", 2), ("16", 16)])
def test_make_run_starts_as_many_ml_workers_as_asked(monkeypatch, given, workers):
    if given is None:
        monkeypatch.delenv("ML_WORKER_COUNT", raising=False)
    else:
        monkeypatch.setenv("ML_WORKER_COUNT", given)
    assert run_local.ml_workers() == workers


@pytest.mark.parametrize("given", ["0", "17", "٢", "two", ""])
def test_a_worker_count_make_run_cannot_use_stops_it_saying_so(monkeypatch, given):
    monkeypatch.setenv("ML_WORKER_COUNT", given)
    with pytest.raises(SystemExit, match="ML_WORKER_COUNT must be a whole number from 1 to 16"):
        run_local.ml_workers()
