"""Traces across services (kit/tracing.py), in one process with the SDK's in-memory exporter: a request's server
span, the batch that served it, the call to a peer and the peer's own server span are one trace; with no OTLP
endpoint configured nothing is wrapped and no trace header leaves. The same across real processes:
tests/e2e/test_rehearsal.py."""

from __future__ import annotations

import threading
import time

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kit import tracing
from kit.batching import Batcher
from kit.clients import ServiceClient
from kit.errors import AppError
from kit.requestlog import REQUEST_ID_HEADER, request_id_bound
from kit.wsgitest import WsgiTransport, call


class Peer:
    """A peer service's WSGI application: answers {"seen": traceparent} (or 503 for /down)."""

    def __call__(self, environ, start_response):
        self.environ = environ
        if environ["PATH_INFO"] == "/down":
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"error": {"code": "service_unavailable", "message": "down"}}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"ok": true}']


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.stop()
    assert tracing.setup("test", exporter)
    yield exporter
    tracing.stop()


def front_and_peer(path: str = "/predict"):
    """A traced front whose request hands its work to a batcher that calls the traced peer."""
    peer = Peer()
    client = ServiceClient("http://ml", "token", transport=WsgiTransport(tracing.traced_app(peer, "ml")))
    client.service = "ml"
    batcher = Batcher("calls to ml", lambda items: [client.get_json(path) for _ in items])

    def front(environ, start_response):
        with request_id_bound("req-1"):
            try:
                batcher.submit("item")
                start_response("200 OK", [("Content-Type", "application/json")])
            except AppError:
                start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b"{}"]

    return tracing.traced_app(front, "gateway"), peer, batcher


def test_a_request_its_batch_its_peer_call_and_the_peer_are_one_trace(spans):
    front, peer, batcher = front_and_peer()
    answer = call(front, "POST", "/api/predictions/42", {})
    batcher.close()
    assert answer.status == 200
    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert set(by_name) == {"POST /api/predictions/{id}", "batch calls to ml", "GET ml /predict", "GET /predict"}
    server, batch, client, peer_server = (by_name[name] for name in (
        "POST /api/predictions/{id}", "batch calls to ml", "GET ml /predict", "GET /predict"))
    assert len({span.context.trace_id for span in by_name.values()}) == 1, "one trace"
    assert server.parent is None and server.kind == SpanKind.SERVER
    assert batch.parent.span_id == server.context.span_id, "the batch continues the request's trace"
    assert client.parent.span_id == batch.context.span_id and client.kind == SpanKind.CLIENT
    assert peer_server.parent.span_id == client.context.span_id, "the peer continues the caller's span"
    assert peer.environ["HTTP_TRACEPARENT"].split("-")[2] == f"{client.context.span_id:016x}"
    assert server.attributes["digitlab.request_id"] == "req-1"
    assert peer_server.attributes["http.response.status_code"] == 200


def test_a_failing_peer_marks_the_call_and_its_span_as_errors(spans):
    front, _, batcher = front_and_peer("/down")
    assert call(front, "POST", "/api/predictions", {}).status == 503
    batcher.close()
    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert by_name["GET ml /down"].status.status_code == StatusCode.ERROR
    assert by_name["GET /down"].attributes["http.response.status_code"] == 503
    assert by_name["POST /api/predictions"].attributes["http.response.status_code"] == 503


def test_callers_sharing_a_batch_are_linked_to_it(spans):
    started = threading.Event()
    release = threading.Event()

    def handle(items):
        started.set()
        release.wait(5)
        return items

    batcher = Batcher("slow", handle, max_items=8)

    def front(environ, start_response):
        batcher.submit(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b""]

    app = tracing.traced_app(front, "gateway")
    first = threading.Thread(target=call, args=(app, "POST", "/first"))
    first.start()
    started.wait(5)  # the first batch is being handled: the next two wait together
    others = [threading.Thread(target=call, args=(app, "POST", path)) for path in ("/second", "/third")]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 5
    while batcher.waiting < 2:
        assert time.monotonic() < deadline, "the two requests never waited together"
        time.sleep(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    batcher.close()
    finished = spans.get_finished_spans()
    requests_by_path = {span.attributes["url.path"]: span for span in finished if span.kind == SpanKind.SERVER}
    shared = [span for span in finished if span.name == "batch slow" and span.attributes["digitlab.batch.callers"] == 2]
    assert len(shared) == 1
    callers = {shared[0].parent.span_id, *(link.context.span_id for link in shared[0].links)}
    assert callers == {requests_by_path["/second"].context.span_id, requests_by_path["/third"].context.span_id}


def test_off_by_default_nothing_is_wrapped_and_no_trace_header_leaves(monkeypatch):
    tracing.stop()
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    peer = Peer()
    assert tracing.traced_app(peer, "ml") is peer
    client = ServiceClient("http://ml", "token", transport=WsgiTransport(peer))
    with request_id_bound("req-2"):
        client.get_json("/predict")
    assert "HTTP_TRACEPARENT" not in peer.environ
    assert peer.environ["HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")] == "req-2"
    assert tracing.current_context() is None and tracing.trace_id() is None


@pytest.mark.parametrize(("variables", "expected"), [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://jaeger:4318/v1/traces"}, True),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318", "OTEL_SDK_DISABLED": "true"}, False),
])
def test_tracing_is_on_only_where_an_endpoint_is_configured(monkeypatch, variables, expected):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert tracing.configured() is expected


def test_a_body_made_while_it_is_sent_is_made_in_the_requests_trace(spans):
    """A streamed answer (a CSV export, an event stream) calls peers while the server sends it: its calls are in
    the request's trace, and the request's span ends only once the body is sent."""
    peer = Peer()
    client = ServiceClient("http://storage", "token", transport=WsgiTransport(peer))
    client.service = "storage"

    def streaming(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/csv")])
        return (client.get_json(f"/page/{page}") and b"row\n" for page in range(2))

    answer = call(tracing.traced_app(streaming, "gateway"), "GET", "/api/export")
    assert answer.body == b"row\nrow\n"
    finished = spans.get_finished_spans()
    (server,) = [span for span in finished if span.kind == SpanKind.SERVER]
    calls = [span for span in finished if span.kind == SpanKind.CLIENT]
    assert [span.name for span in calls] == ["GET storage /page/{id}"] * 2
    assert all(span.parent.span_id == server.context.span_id for span in calls)
    assert server.end_time >= max(span.end_time for span in calls)


def test_a_body_made_already_goes_to_the_server_as_it_was(spans):
    body = [b'{"digit": 7}']

    def hot(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return body

    environ_answer = tracing.traced_app(hot, "ml")
    result = environ_answer({"REQUEST_METHOD": "POST", "PATH_INFO": "/predict"}, lambda *args: None)
    assert result is body, "the server's fast path for a list body stays"
    assert [span.name for span in spans.get_finished_spans()] == ["POST /predict"]


def test_a_call_that_breaks_unexpectedly_still_ends_its_span(spans):
    class Broken(WsgiTransport):
        def send(self, request, **kwargs):
            raise ValueError("a body cut short")

    client = ServiceClient("http://ml", "token", transport=Broken(Peer()))
    with pytest.raises(ValueError):
        client.get_json("/predict")
    (span,) = spans.get_finished_spans()
    assert span.kind == SpanKind.CLIENT and span.status.status_code == StatusCode.ERROR


@pytest.mark.parametrize(("path", "name"), [
    ("/models/12/report", "/models/{id}/report"),
    ("/blobs/" + "ab" * 32, "/blobs/{id}"),
    ("/datasets", "/datasets"),
    ("/runs/abc", "/runs/abc"),
])
def test_span_names_are_one_per_endpoint_not_one_per_object(path, name):
    assert tracing.route(path) == name
