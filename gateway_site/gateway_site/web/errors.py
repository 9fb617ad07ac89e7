"""One way to answer an error: the JSON error shape for the API, the error page (or fragment) for the browser."""

from __future__ import annotations

from django.shortcuts import render

from kit.errors import error_response


def error_answer(request, *, status: int, code: str, message: str, details=None, service: str | None = None):
    if request.path.startswith("/api/"):
        return error_response(code, message, status=status, details=details)
    template = "web/_error.html" if getattr(request, "htmx", False) else "web/error.html"
    return render(request, template, {"status": status, "message": message, "service": service}, status=status)
