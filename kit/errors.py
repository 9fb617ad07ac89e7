"""One application error type and its JSON shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from django.http import JsonResponse

logger = logging.getLogger(__name__)


class AppError(Exception):
    """An expected failure, reported to the caller as a JSON error."""

    def __init__(self, code: str, message: str, *, status: int = 400, details: Any = None, retry_after: int = 5):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details if details is not None else {}
        self.retry_after = retry_after  # seconds, sent with 429 and 503


class PeerUnavailable(AppError):
    """A peer service could not be reached, timed out or failed."""

    def __init__(self, service: str, reason: str):
        super().__init__(
            "service_unavailable",
            f"{service} is unavailable: {reason}",
            status=503,
            details={"service": service},
        )
        self.service = service


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def retry_headers(status: int, retry_after: int) -> dict[str, str]:
    """`Retry-After` goes with every 429 and 503 (the one place this is said)."""
    return {"Retry-After": str(retry_after)} if status in (429, 503) else {}


def error_response(code: str, message: str, *, status: int, details: Any = None, retry_after: int = 5) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status, headers=retry_headers(status, retry_after))


def app_error_response(exc: AppError) -> JsonResponse:
    return error_response(exc.code, exc.message, status=exc.status, details=exc.details, retry_after=exc.retry_after)


def database_error(exception: BaseException) -> AppError | None:
    """A lost or refused database connection as the 503 it is (the database comes back by itself); else None."""
    from django.db import InterfaceError, OperationalError

    if not isinstance(exception, (OperationalError, InterfaceError)):
        return None
    logger.warning("the database is unavailable: %s", str(exception).strip())
    return AppError("database_unavailable", "The database is unavailable for a moment; try again shortly.",
                    status=503, retry_after=1)


class AppErrorMiddleware:
    """Turns AppError raised by any view into its JSON response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        error = exception if isinstance(exception, AppError) else database_error(exception)
        return app_error_response(error) if error is not None else None


def drf_exception_handler(exc, context):
    """DRF exception handler giving every API error the platform's JSON shape."""
    from django.core.exceptions import PermissionDenied
    from rest_framework import exceptions
    from rest_framework.views import exception_handler

    exc = database_error(exc) or exc
    if type(exc) is PermissionDenied:  # Django's (accounts.roles.require_role): the API's own 403
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, AppError):
        return _drf_response(error_body(exc.code, exc.message, exc.details), exc.status, exc.retry_after)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "The request is not valid.", response.data)
    else:
        code = getattr(exc, "default_code", "error")
        detail = response.data.get("detail", str(exc)) if isinstance(response.data, dict) else exc
        body = error_body(str(code), str(detail))
    response.data = body
    return response


def _drf_response(body: dict[str, Any], status: int, retry_after: int = 5):
    from rest_framework.response import Response

    return Response(body, status=status, headers=retry_headers(status, retry_after))


def json_404(request, exception=None):
    return error_response("not_found", f"No such resource: {request.path}", status=404)


def json_500(request):
    return error_response("internal_error", "The server failed to handle the request.", status=500)


def json_400(request, exception=None):
    from django.core.exceptions import RequestDataTooBig

    if isinstance(exception, RequestDataTooBig):
        return error_response("too_large", "The request body is over this service's size cap.", status=413)
    return error_response("bad_request", "The request could not be understood.", status=400)
