"""A page whose peer service is down says which one, with a 503; the API answers JSON."""

from __future__ import annotations

from gateway_site.web.errors import error_answer
from kit.errors import AppError, PeerUnavailable


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


# Scripts only from this site (htmx and plotly are served locally, no inline script, no eval); inline styles
# are allowed because plotly draws with them; no framing, no plugins, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class ContentSecurityPolicyMiddleware:
    """Every answer carries the Content-Security-Policy above (a page's own header wins)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
