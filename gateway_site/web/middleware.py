"""A page whose peer service is down says which one, with a 503; the API answers JSON."""

from __future__ import annotations

from django.shortcuts import render

from kit.errors import AppError, PeerUnavailable, app_error_response


class PeerErrorPageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, AppError):
            return None
        if request.path.startswith("/api/"):
            return app_error_response(exception)
        template = "web/_error.html" if getattr(request, "htmx", False) else "web/error.html"
        context = {
            "status": exception.status,
            "message": exception.message,
            "service": exception.service if isinstance(exception, PeerUnavailable) else None,
        }
        return render(request, template, context, status=exception.status)
