"""The multi-host rehearsal (tests/e2e/cluster.py): two hosts on loopback, each with storage_svc, ml_svc, a gateway
and an ML worker, one load balancer, one PostgreSQL, blobs in an S3-compatible store, spans exported over OTLP.

- a training taken by either worker is served by both ml_svc replicas within 5 s of its promotion (each reads the
  weights through its own host's storage replica from the object store);
- a gateway replica killed under load loses no acknowledged prediction: clients retry, the balancer sends them
  to the other replica;
- one prediction is one trace, with spans of the gateway, ml_svc and storage_svc (and storage's PostgreSQL
  queries), across the hosts.
"""

from __future__ import annotations

import signal
import threading
import time

import psycopg2
import pytest
import requests

from scripts import front
from tests.e2e.cluster import HOSTS, Cluster
from tests.e2e.support import Api, mixed_digits

pytestmark = pytest.mark.skipif(not front.available(), reason="nginx is missing: `make test` installs it")
PROMOTION_SERVED_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = Cluster(workdir=tmp_path_factory.mktemp("rehearsal"))
    try:
        running.start()
        yield running
    finally:
        running.stop()


def served_by(cluster: Cluster, host: str, pixels) -> int | None:
    """The version ml_svc on `host` answers with, asked directly (as its gateway does)."""
    answer = requests.post(cluster.url("ml", host) + "/predict", json={"pixels": pixels}, timeout=10,
                           headers={"X-Service-Token": cluster.env["SERVICE_TOKEN"], "X-Caller": "gateway"})
    return answer.json()["model"]["id"] if answer.status_code == 200 else None


def seconds_until_both_serve(cluster: Cluster, version_id: int, since: float, pixels) -> dict[str, float]:
    """For each host, seconds from `since` (the promotion) until its ml_svc answers with `version_id` (each host
    asked from a thread of its own, so that one host's slow answer does not delay the other's)."""
    waited: dict[str, float] = {}

    def watch(host: str) -> None:
        while time.monotonic() - since < 30:
            if served_by(cluster, host, pixels) == version_id:
                waited[host] = time.monotonic() - since
                return
            time.sleep(0.05)

    watchers = [threading.Thread(target=watch, args=(host,)) for host in HOSTS]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        watcher.join(40)
    return waited


def task_workers(cluster: Cluster) -> list[list[str]]:
    """The worker ids that took each finished task of the ML queue (not the webhooks'), oldest first."""
    with psycopg2.connect(cluster.databases["ml"]) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT worker_ids FROM django_tasks_database_dbtaskresult WHERE status = 'SUCCESSFUL' "
                       "AND queue_name = 'default' ORDER BY enqueued_at")
        return [row[0] for row in cursor.fetchall()]


def test_a_training_taken_by_either_worker_is_served_by_both_ml_replicas_within_5_s(cluster):
    images, _ = mixed_digits()
    pixels = images[0].tolist()
    production = cluster.ensure_production_model()
    engineer = Api(cluster.url("gateway"), "engineer", cluster.demo_password)
    admin = Api(cluster.url("gateway"), "admin", cluster.demo_password)
    dataset_id = engineer.get("/api/datasets").json()["results"][-1]["id"]
    # Two trainings at once: each worker takes one (a worker runs one task at a time).
    runs = [engineer.post("/api/scenarios/train-model", {"dataset_id": dataset_id, "hyperparameters": {"epochs": 1}})
            for _ in range(2)]
    assert [run.status_code for run in runs] == [202, 202], [run.text for run in runs]
    finished = [engineer.wait_for_run(run.json()["id"], timeout_s=300) for run in runs]
    assert [run["status"] for run in finished] == ["succeeded", "succeeded"], [run["error"] for run in finished]
    takers = {ids[-1] for ids in task_workers(cluster)[-2:]}
    assert takers == {f"worker-{host}" for host in HOSTS}, f"each worker took one training: {takers}"

    for run in finished:
        version_id = run["result"]["model_version_id"]
        asked = time.monotonic()  # counted from the request, so the promotion's own time is in the figure
        promoted = admin.post(f"/api/models/{version_id}/promote", {"reason": "rehearsal", "override": True})
        assert promoted.status_code == 200, promoted.text
        print(f"promotion answered in {time.monotonic() - asked:.2f} s")
        waited = seconds_until_both_serve(cluster, version_id, asked, pixels)
        print(f"v{version_id} served by both ml replicas after {waited}")
        assert set(waited) == set(HOSTS), f"v{version_id} served only by {sorted(waited)} within 30 s"
        assert max(waited.values()) <= PROMOTION_SERVED_WITHIN_S, waited
    assert production["id"] not in {run["result"]["model_version_id"] for run in finished}


def test_killing_a_gateway_replica_under_load_loses_no_acknowledged_prediction(cluster):
    cluster.ensure_production_model()
    viewer = Api(cluster.url("gateway"), "viewer", cluster.demo_password)
    images, _ = mixed_digits()
    acknowledged: list[tuple[int, float]] = []  # (prediction id, when)
    retried = {"503": 0, "connection": 0}
    failures: list[str] = []  # what a client met that is not a retry: any is a failure of the test
    stop = threading.Event()
    lock = threading.Lock()

    def client(offset: int) -> None:
        session = requests.Session()
        i = offset
        try:
            while not stop.is_set():
                for _ in range(50):  # a client retries a refused or dropped prediction (as the API's 503 says)
                    try:
                        answer = session.post(cluster.url("gateway") + "/api/predictions", headers=viewer.headers,
                                              json={"pixels": images[i % 500].tolist()}, timeout=10)
                    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                        # refused, reset, or an answer cut off as its replica died: not acknowledged, so sent again
                        # (it may then be recorded twice, never lost)
                        with lock:
                            retried["connection"] += 1
                        time.sleep(0.05)
                        continue
                    if answer.status_code in (502, 503):
                        with lock:
                            retried["503"] += 1
                        time.sleep(0.05)
                        continue
                    if answer.status_code != 201:
                        failures.append(f"{answer.status_code}: {answer.text[:200]}")
                        return
                    with lock:
                        acknowledged.append((answer.json()["id"], time.monotonic()))
                    break
                else:
                    failures.append("50 tries without an answer")
                    return
                i += 8
        except Exception as exc:  # noqa: BLE001 -- reported by the test, not lost with the thread
            failures.append(repr(exc))

    clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in clients:
        thread.start()
    time.sleep(3)
    killed = f"gateway@{HOSTS[0]}"
    cluster.stop_service(killed, signal.SIGKILL)  # as a host that loses power: no goodbye
    killed_at = time.monotonic()
    time.sleep(4)
    stop.set()
    for thread in clients:
        thread.join(30)
    try:
        before = sum(1 for _, at in acknowledged if at < killed_at)
        after = len(acknowledged) - before
        print(f"acknowledged {before} before and {after} after the kill; retries {retried}")
        assert failures == [], failures
        assert before > 0 and after > 0, "the other replica carries the load after the kill"
        served_by_killed = (cluster.workdir / "logs" / f"{killed}.jsonl").read_text().count('"/api/predictions"')
        assert served_by_killed > 0, "both replicas took predictions before the kill"
        ids = [prediction_id for prediction_id, _ in acknowledged]
        with psycopg2.connect(cluster.databases["storage"]) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM registry_prediction WHERE id = ANY(%s)", (ids,))
            assert cursor.fetchone()[0] == len(set(ids)), "every acknowledged prediction is in the history"
    finally:
        cluster.start_replica("gateway", HOSTS[0])
        cluster.ready(killed)


def test_one_prediction_is_one_trace_across_gateway_ml_and_storage(cluster):
    cluster.ensure_production_model()
    viewer = Api(cluster.url("gateway"), "viewer", cluster.demo_password)
    images, _ = mixed_digits()
    client_trace = "4bf92f3577b34da6a3ce929d0e0e4736"  # a client's own trace header is not continued
    answer = requests.post(cluster.url("gateway") + "/api/predictions", json={"pixels": images[1].tolist()},
                           headers={**viewer.headers, "traceparent": f"00-{client_trace}-00f067aa0ba902b7-01"},
                           timeout=10)
    assert answer.status_code == 201, answer.text
    request_id = answer.headers["X-Request-ID"]

    def whole(spans) -> bool:
        """Every span of the prediction has arrived: each service's, a root, no parent missing (spans end, and are
        sent, children first: a parent may come in a later export)."""
        ids = {span.span_id for span in spans}
        return ({"gateway", "ml", "storage"} <= {span.service for span in spans}
                and sum(not span.parent_span_id for span in spans) == 1
                and all(span.parent_span_id in ids for span in spans if span.parent_span_id))

    deadline = time.monotonic() + 15
    while not whole(spans := cluster.spans.of_request(request_id)) and time.monotonic() < deadline:
        time.sleep(0.2)  # each service sends its spans every 0.2 s here
    by_service = {service: [span for span in spans if span.service == service] for service in ("gateway", "ml", "storage")}
    assert whole(spans), {service: sorted(span.name for span in found) for service, found in by_service.items()}
    assert len({span.trace_id for span in spans}) == 1 and spans[0].trace_id != client_trace
    (root,) = [span for span in spans if not span.parent_span_id]
    assert root.service == "gateway" and root.name == "POST /api/predictions"
    host = root.host
    assert {span.host for span in spans} == {host}, "a gateway calls its own host's ml_svc and storage"
    assert any(span.name == "POST /predict/batch" for span in by_service["ml"])
    assert any(span.name == "POST /predictions/bulk" for span in by_service["storage"])
    assert any(span.attributes.get("db.system") == "postgresql" and span.name.startswith("INSERT")
               for span in by_service["storage"]), "storage's PostgreSQL queries are in the trace"
