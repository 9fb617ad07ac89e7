"""PostgreSQL restarts while users write: errors only during the gap, recovery without restarting services,
and every acknowledged write is there — no partial rows."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from scripts import local_postgres as pgcluster
from tests.e2e.conftest import UNLIMITED
from tests.e2e.platform import Platform
from tests.e2e.support import Api, sample_digits


@pytest.fixture(scope="module")
def restartable(tmp_path_factory):
    if not pgcluster.available():
        pytest.fail("PostgreSQL's binaries are needed to restart a database under load")
    cluster = pgcluster.start_cluster()
    # the load comes from one user: their allowances are lifted (a 429 is not what this test is about)
    platform = Platform(workdir=tmp_path_factory.mktemp("restart"), database_server=cluster.url, settings=dict(UNLIMITED))
    try:
        platform.start()
        yield platform, cluster
    finally:
        platform.stop()
        cluster.stop()


def test_a_database_restart_under_load_loses_no_acknowledged_write(restartable):
    platform, cluster = restartable
    viewer = Api(platform.url("gateway"), "viewer", platform.demo_password)
    digit = sample_digits()[0][77].tolist()
    outcomes: list[tuple[float, int]] = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                status = viewer.post("/api/samples", {"label": 7, "pixels": digit}).status_code
            except Exception:  # a refused connection counts as an error, like any other
                status = 0
            outcomes.append((time.monotonic(), status))

    workers = [threading.Thread(target=load) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(3)
    gap_start = time.monotonic()
    cluster.restart()
    gap_end = time.monotonic()
    time.sleep(4)
    stop.set()
    for worker in workers:
        worker.join()

    statuses = {status for _, status in outcomes}
    assert statuses <= {201, 503}, f"errors are clear 503s, never anything else: {statuses}"
    errors = [t for t, status in outcomes if status != 201]
    assert errors, "the restart was noticed"
    assert all(gap_start - 0.5 <= t <= gap_end + 2.0 for t in errors), "errors only around the gap"
    assert [s for t, s in outcomes if t > gap_end + 2.0] and all(s == 201 for t, s in outcomes if t > gap_end + 2.0), \
        "recovered by itself, no service restarted"
    acknowledged = sum(1 for _, status in outcomes if status == 201)
    with psycopg2.connect(platform.database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM registry_sample")
        assert cursor.fetchone()[0] == acknowledged, "every 201 is a row, and no failed request left one"
    print(f"{len(outcomes)} requests, {len(errors)} failed during a {gap_end - gap_start:.2f} s restart")
