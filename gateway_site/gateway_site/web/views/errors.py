"""The error pages (400, 403, 404, 500) for the browser; the API's errors stay JSON."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from gateway_site.web.errors import error_answer


def bad_request(request, exception=None):
    """A body over the size cap is a 413 naming the cap; any other unreadable request a 400."""
    if isinstance(exception, RequestDataTooBig):
        message = f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024} KiB."
        return error_answer(request, status=413, code="too_large", message=message)
    return error_answer(request, status=400, code="bad_request", message="The request could not be understood.")


def server_error(request):
    message = "Something went wrong on our side; it has been logged."
    return error_answer(request, status=500, code="internal_error", message=message)


def forbidden(request, exception=None):
    return error_answer(request, status=403, code="permission_denied", message="Your role does not allow this page.")


def not_found(request, exception=None):
    return error_answer(request, status=404, code="not_found", message=f"There is no such page: {request.path}")
