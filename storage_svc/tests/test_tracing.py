"""A traced request's database queries are spans of its trace, continued from the caller's traceparent
(kit/tracing.py; across the real services: tests/e2e/test_rehearsal.py)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kit import tracing
from kit.wsgitest import call, database_kept
from storage_svc.wsgi import django_application

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracing.stop()
    tracing.setup("storage", exporter)
    yield exporter
    tracing.stop()


@pytest.mark.django_db
def test_a_request_and_its_postgresql_queries_continue_the_callers_trace(spans, settings, model_version):
    app = tracing.traced_app(django_application, "storage")
    with database_kept():  # the handler's end of request would close the test's connection
        answer = call(app, "GET", f"/models/{model_version['id']}", headers={
            "X-Service-Token": settings.SERVICE_TOKEN, "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    assert answer.status == 200, answer.body
    finished = spans.get_finished_spans()
    server = next(span for span in finished if span.kind == SpanKind.SERVER)
    assert server.name == "GET /models/{id}"
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE and f"{server.parent.span_id:016x}" == CALLER_SPAN
    queries = [span for span in finished if span.context.trace_id == server.context.trace_id and span is not server]
    assert queries and all(span.parent.span_id == server.context.span_id for span in queries)
    assert {span.attributes["db.system"] for span in queries} == {"postgresql"}
    assert any(span.name.startswith("SELECT ") and "model" in span.attributes["db.query.text"] for span in queries)
    assert server.attributes["digitlab.request_id"] == answer.headers["X-Request-ID"]
