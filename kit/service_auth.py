"""Internal services accept only calls that carry the shared service token."""

from __future__ import annotations

import hmac

from django.conf import settings

from kit.errors import AppError, error_response

SERVICE_TOKEN_HEADER = "X-Service-Token"
OPEN_PATH_PREFIXES = ("/health", "/ready", "/metrics", "/admin/", "/static/")


def valid_service_token(given: str) -> bool:
    """Whether `given` is this deployment's service token (compared in constant time)."""
    return hmac.compare_digest(given.encode(), settings.SERVICE_TOKEN.encode())


class ServiceTokenMiddleware:
    """Rejects with 401 every request without the right `X-Service-Token`, except health and admin."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(OPEN_PATH_PREFIXES):
            if not valid_service_token(request.headers.get(SERVICE_TOKEN_HEADER, "")):
                return error_response(
                    "unauthorized", "A valid service token is required.", status=401
                )
            request.caller = request.headers.get("X-Caller", "service")
        return self.get_response(request)


def service_token_required(view):
    """For a view on a public service that only peers may call: `X-Service-Token` or `Authorization: Bearer`."""

    def wrapped(request, *args, **kwargs):
        given = request.headers.get(SERVICE_TOKEN_HEADER, "")
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            given = given or bearer.removeprefix("Bearer ")
        if not valid_service_token(given):
            return error_response("unauthorized", "A valid service token is required.", status=401)
        return view(request, *args, **kwargs)

    return wrapped


def hot_service_caller(request) -> str:
    """The service-token check of `ServiceTokenMiddleware`, for a `kit.hotpath` route."""
    if not valid_service_token(request.header(SERVICE_TOKEN_HEADER)):
        raise AppError("unauthorized", "A valid service token is required.", status=401)
    return request.header("X-Caller") or "service"
