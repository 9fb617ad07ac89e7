"""A thin WSGI front for the few JSON endpoints that carry heavy load.

Each hot route gets what the Django middleware gives every request (its caller checked,
the request id carried, one access log line, the request metrics, the JSON error shape,
the body size cap) without Django's request and response machinery, URL resolver and DRF,
which were half of every prediction's CPU (bench/README.md). Every other request goes
to the Django application unchanged.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from kit.errors import AppError, database_error, error_body, retry_headers
from kit.metrics import LATENCY, REQUESTS
from kit.requestlog import REQUEST_ID_HEADER, log_access, request_id_bound, request_id_from
from kit.validation import parse_json_body

logger = logging.getLogger(__name__)

@dataclass
class HotRequest:
    """What a hot handler sees: the parsed JSON body and the headers, by WSGI name (HTTP_X_CALLER)."""

    environ: dict
    body: Any
    caller: str | None = None

    def header(self, name: str) -> str:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), "")


# A handler answers (status, JSON-able body) or raises AppError.
Handler = Callable[[HotRequest], tuple[int, Any]]
# An authenticator returns the caller's name or raises AppError (401/403).
Authenticator = Callable[[HotRequest], str]


class HotPaths:
    def __init__(self, django_app, routes: dict[tuple[str, str], Handler], *, service: str,
                 authenticate: Authenticator, max_body_bytes: int, applies: Callable[[dict], bool] | None = None):
        """`applies(environ)` may leave a request of a hot route to Django (e.g. a browser session's)."""
        self.django_app = django_app
        self.applies = applies
        self.routes = routes
        self.service = service
        self.authenticate = authenticate
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ, start_response):
        chunked = not environ.get("CONTENT_LENGTH") and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        oversized = chunked and not self._read_chunked(environ)
        handler = self.routes.get((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        if not oversized and (handler is None or (self.applies is not None and not self.applies(environ))):
            return self.django_app(environ, start_response)
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        request = HotRequest(environ, None)
        headers: list[tuple[str, str]] = []
        with request_id_bound(request_id):
            try:
                if oversized:  # refused here for Django's routes too: it has read the body already
                    raise AppError("too_large", "The request body is over this service's size cap.", status=413)
                request.caller = self.authenticate(request)
                request.body = self._json_body(environ)
                status, body = handler(request)
            except Exception as raised:
                exc = raised if isinstance(raised, AppError) else database_error(raised)
                if exc is None:
                    logger.exception("unhandled error on %s", environ.get("PATH_INFO"))
                    exc = AppError("internal_error", "The server failed to handle the request.", status=500)
                status, body = exc.status, error_body(exc.code, exc.message, exc.details)
                headers += retry_headers(exc.status, exc.retry_after).items()
        payload = orjson.dumps(body)
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                    (REQUEST_ID_HEADER, request_id)]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        elapsed = time.perf_counter() - started
        path = environ["PATH_INFO"]
        label = path if handler is not None else "other"  # a path a client made up is no metric label
        REQUESTS.labels(self.service, label, environ["REQUEST_METHOD"], str(status)).inc()
        LATENCY.labels(self.service, label).observe(elapsed)
        log_access(request_id=request_id, method=environ["REQUEST_METHOD"], path=path,
                   query=environ.get("QUERY_STRING", ""), status=status, latency_ms=elapsed * 1000,
                   caller=request.caller, size=len(payload))
        return [payload]

    def _read_chunked(self, environ) -> bool:
        """Read a chunked body (it has no Content-Length) up to the cap, so that every handler, Django's too, sees
        it whole and sized; False when it is over the cap."""
        body = environ["wsgi.input"].read(self.max_body_bytes + 1)
        if len(body) > self.max_body_bytes:
            return False
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return True

    def _json_body(self, environ) -> Any:
        if not environ.get("CONTENT_TYPE", "").startswith("application/json"):
            raise AppError("unsupported_media_type", "Send the body as application/json.", status=415)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise AppError("bad_request", "Content-Length is not a number.") from None
        if length > self.max_body_bytes:
            raise AppError("too_large", "The request body is over this service's size cap.", status=413)
        return parse_json_body(environ["wsgi.input"].read(length))
