"""Request ids carried across hops, and one JSON log line per request."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson

from kit import tracing

REQUEST_ID_HEADER = "X-Request-ID"
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

access_logger = logging.getLogger("platform.access")


def current_request_id() -> str:
    return _request_id.get()


@contextlib.contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    """Within the block, log lines and calls to peers carry `request_id` (and so does the request's span)."""
    token = _request_id.set(request_id)
    tracing.tag_request(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_from(incoming: str) -> str:
    """The caller's request id when it is a plain token (letters, digits, `._:-`, at most 64), else a new one:
    it is echoed in a header and written to every log line, so nothing else may pass."""
    return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; `extra={"fields": {...}}` adds keys."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        # RotatingFileHandler formats each record twice (to decide on rollover, then to write).
        cached = record.__dict__.get("_json_line")
        if cached is not None:
            return cached
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "service": self.service,
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": current_request_id() or None,
            "message": record.getMessage(),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        record._json_line = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        return record._json_line


# fontTools (WeasyPrint's font subsetter where HarfBuzz's is missing) logs ~20 INFO lines per PDF.
QUIET_LIBRARIES = {"fontTools": {"level": "WARNING"}}


def logging_config(service: str, log_file: str, level: str = "INFO", to_stdout: bool = False) -> dict:
    """A dictConfig: JSON lines to `log_file` (rotating) and plain lines to stderr; in a container
    (`to_stdout`) JSON lines to stdout only, where the container runtime collects them."""
    if to_stdout:
        return {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": JsonFormatter, "service": service}},
            "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}},
            "root": {"handlers": ["stdout"], "level": level},
            "loggers": {"django.server": {"level": "WARNING"}, **QUIET_LIBRARIES},
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": JsonFormatter, "service": service},
            "plain": {"format": f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "file": {
                "class": "logging.handlers.RotatingFileHandler",
                "filename": log_file,
                "maxBytes": 20 * 1024 * 1024,
                "backupCount": 5,
                "formatter": "json",
            },
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
        },
        "root": {"handlers": ["file", "stderr"], "level": level},
        "loggers": {
            # Access lines go to the JSON file only; stderr would double every request.
            "platform.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
            "django.server": {"handlers": ["file"], "level": "WARNING", "propagate": False},
            **QUIET_LIBRARIES,
        },
    }


class RequestLogMiddleware:
    """Assigns or carries `X-Request-ID` and writes one JSON access line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER, ""))
        request.request_id = request_id
        started = time.perf_counter()
        with request_id_bound(request_id):
            response = self.get_response(request)
        latency_ms = (time.perf_counter() - started) * 1000
        response[REQUEST_ID_HEADER] = request_id
        user = getattr(request, "user", None)
        caller = getattr(request, "caller", None) or (
            user.get_username() if user is not None and user.is_authenticated else None
        )
        log_access(
            request_id=request_id, method=request.method, path=request.path,
            query=request.META.get("QUERY_STRING", ""), status=response.status_code, latency_ms=latency_ms,
            caller=caller, size=len(response.content) if not response.streaming else None,
            **getattr(request, "log_fields", {}),
        )
        return response


def log_access(*, request_id: str, method: str, path: str, query: str, status: int, latency_ms: float,
               caller: str | None, size: int | None, **fields) -> None:
    """The one JSON access line of a request (with its trace's id when tracing is on)."""
    if tracing.on():
        fields["trace_id"] = tracing.trace_id()
    access_logger.info(
        "%s %s %s", method, path, status,
        extra={"fields": {
            "request_id": request_id, "method": method, "path": path, "query": query, "status": status,
            "latency_ms": round(latency_ms, 2), "caller": caller, "bytes": size, **fields,
        }},
    )
