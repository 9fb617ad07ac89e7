"""Traces across the services (OpenTelemetry): off, and free, unless an OTLP endpoint is configured.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, each service's WSGI application
is wrapped by `traced_app()`: every request is a server span, continued from the caller's W3C `traceparent`
header; every call to a peer (kit/clients.py) is a client span whose context goes with the request, beside its
`X-Request-ID`; every database query is a span of its own (Django's execute wrapper); a batch that serves several
requests (kit/batching.py) is a span of the first one's trace, linked to the others'. Spans leave in batches over
OTLP/HTTP from a background thread (the SDK's `OTEL_EXPORTER_OTLP_*` and `OTEL_BSP_*` variables apply); a request
never waits for the exporter. The access log line of a traced request names its trace (`trace_id`).

Unset (the default), nothing here imports OpenTelemetry, wraps anything or adds a header: each hook is one test of
a module global. On, OpenTelemetry's modules are imported once, by setup(), and kept in `_otel`.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable
from contextlib import contextmanager, nullcontext
from types import SimpleNamespace
from typing import Any

_tracer = None  # the process's tracer once tracing is on
_otel = SimpleNamespace()  # OpenTelemetry's API modules, imported by setup()
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_ID = re.compile(r"/(?:\d+|[0-9a-fA-F]{16,})(?=/|$)")  # a number, or a hash (a blob's SHA-256)


def configured() -> bool:
    """Whether this process's environment asks for traces."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in _ENDPOINT_VARIABLES)


def on() -> bool:
    return _tracer is not None


def setup(service: str, exporter: Any = None) -> bool:
    """Start tracing this process as `service` when configured (or, in tests, into `exporter`, e.g. the SDK's
    InMemorySpanExporter, span by span); True when it traces."""
    global _tracer
    if _tracer is not None:
        return True
    if exporter is None and not configured():
        return False
    from opentelemetry import context, propagate, trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    _otel.__dict__.update(context=context, propagate=propagate, trace=trace, SpanKind=SpanKind, Status=Status,
                          StatusCode=StatusCode)

    # Replicas apart in the traces: this process, on this host (host.name may be given in OTEL_RESOURCE_ATTRIBUTES).
    provider = TracerProvider(resource=Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME") or service,
        "service.instance.id": f"{socket.gethostname()}:{os.getpid()}"}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # flushed at exit by the provider
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracer = provider.get_tracer("digitlab")
    _trace_queries()
    return True


def stop() -> None:
    """Tracing off again (tests)."""
    global _tracer
    _tracer = None


def route(path: str) -> str:
    """A path with its numbers and hashes as {id}: one span name per endpoint, not per object."""
    return _ID.sub("/{id}", path)


class _EnvironGetter:
    """Reads the trace context's headers from a WSGI environ (`traceparent` is HTTP_TRACEPARENT)."""

    def get(self, environ: dict, key: str) -> list[str] | None:
        value = environ.get("HTTP_" + key.upper().replace("-", "_"))
        return [value] if value is not None else None

    def keys(self, environ: dict) -> list[str]:
        return [key[5:].lower().replace("_", "-") for key in environ if key.startswith("HTTP_")]


def traced_app(app, service: str):
    """`app` itself when tracing is off; else `app` with a server span per request."""
    if not setup(service):
        return app
    getter = _EnvironGetter()

    def application(environ, start_response):
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        span = _tracer.start_span(f"{method} {route(path)}", context=_otel.propagate.extract(environ, getter=getter),
                                  kind=_otel.SpanKind.SERVER,
                                  attributes={"http.request.method": method, "url.path": path})

        def recording_start_response(status, headers, exc_info=None):
            code = int(status.split(" ", 1)[0])
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(_otel.Status(_otel.StatusCode.ERROR))
            return start_response(status, headers, exc_info)

        span_context = _otel.trace.set_span_in_context(span)
        token = _otel.context.attach(span_context)
        try:
            result = app(environ, recording_start_response)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(_otel.Status(_otel.StatusCode.ERROR))
            span.end()
            raise
        finally:
            _otel.context.detach(token)
        if isinstance(result, list):  # a body made already (the hot paths'): the server's fast path stays
            span.end()
            return result
        return _EndsSpan(result, span, span_context)

    return application


class _EndsSpan:
    """A response body made while the server sends it (a CSV export, an event stream): each part is made in the
    request's trace, and the span ends once the server has sent it all (WSGI's close())."""

    def __init__(self, body: Iterable[bytes], span, span_context):
        self.body, self.span, self.span_context = body, span, span_context

    def __iter__(self):
        parts = iter(self.body)
        while True:
            token = _otel.context.attach(self.span_context)
            try:
                part = next(parts)
            except StopIteration:
                return
            finally:
                _otel.context.detach(token)
            yield part

    def close(self) -> None:
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.span.end()


def tag_request(request_id: str) -> None:
    """Name the request id on the request's span (the logs name the trace: trace_id())."""
    if _tracer is not None:
        _otel.trace.get_current_span().set_attribute("digitlab.request_id", request_id)


def trace_id() -> str | None:
    """The current trace's id (32 hex digits), for the access log; None when off or outside a span."""
    if _tracer is None:
        return None
    span_context = _otel.trace.get_current_span().get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None


def client_span(service: str, method: str, path: str, headers: dict[str, str]):
    """A started span for a call to a peer, its context written into `headers` (traceparent); None when off.
    End it with end_client_span()."""
    if _tracer is None:
        return None
    span = _tracer.start_span(f"{method} {service} {route(path.split('?', 1)[0])}", kind=_otel.SpanKind.CLIENT,
                              attributes={"peer.service": service, "http.request.method": method})
    _otel.propagate.inject(headers, context=_otel.trace.set_span_in_context(span))
    return span


def end_client_span(span, status: int | None = None, error: str | None = None) -> None:
    if span is None:
        return
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if error is not None or (status is not None and status >= 500):
        span.set_status(_otel.Status(_otel.StatusCode.ERROR, error))
    span.end()


def current_context():
    """The caller's trace context, for work another thread does on its behalf (None when off)."""
    if _tracer is None:
        return None
    return _otel.context.get_current()


def batch_span(name: str, contexts: list, items: int):
    """A span for one batch serving several callers: a child of the first caller's span, linked to the others'
    (`contexts`: each caller's current_context()). A no-op when off."""
    if _tracer is None or not contexts or contexts[0] is None:
        return nullcontext()
    return _batch_span(name, contexts, items)


@contextmanager
def _batch_span(name: str, contexts: list, items: int):
    links = [_otel.trace.Link(_otel.trace.get_current_span(c).get_span_context()) for c in contexts[1:]
             if c is not None]
    with _tracer.start_as_current_span(f"batch {name}", context=contexts[0], links=links,
                                       attributes={"digitlab.batch.items": items,
                                                   "digitlab.batch.callers": len(contexts)}):
        yield


def _trace_queries() -> None:
    """Every database query of this process's Django connections is a span (from now on)."""
    try:
        from django.conf import settings
        from django.db.backends.signals import connection_created
    except ImportError:
        return
    connection_created.connect(_wrap_connection, dispatch_uid="kit.tracing")
    if not settings.configured:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        _wrap_connection(None, connection)


def _wrap_connection(sender, connection, **kwargs) -> None:
    if _query_span not in connection.execute_wrappers:
        connection.execute_wrappers.append(_query_span)


def _query_span(execute, sql, params, many, context):
    if _tracer is None:
        return execute(sql, params, many, context)
    connection = context["connection"]
    words = sql.split(None, 1) if isinstance(sql, str) else []
    with _tracer.start_as_current_span(
        f"{words[0].upper() if words else 'SQL'} {connection.settings_dict.get('NAME') or connection.alias}",
        kind=_otel.SpanKind.CLIENT,
        attributes={"db.system": connection.vendor, "db.namespace": str(connection.settings_dict.get("NAME") or ""),
                    "db.query.text": sql[:2000] if isinstance(sql, str) else ""},
    ):
        return execute(sql, params, many, context)
