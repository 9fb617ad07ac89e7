"""A page whose peer service is down says which one, with a 503; the API answers JSON."""

from __future__ import annotations

from kit.errors import AppError, PeerUnavailable
from web.errors import error_answer


class PeerErrorPageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, AppError):
            return None
        return error_answer(
            request, status=exception.status, code=exception.code, message=exception.message, details=exception.details,
            service=exception.service if isinstance(exception, PeerUnavailable) else None,
        )
