"""`POST /api/predictions` with an API token and a JSON body, served through kit.hotpath (wsgi.py).

The same scenario as the DRF view (services.prediction_create), without Django's request machinery; the token and
its role are checked by accounts.tokens.
"""

from __future__ import annotations

from gateway_site.accounts import tokens
from gateway_site.scenarios import services
from kit.errors import AppError


def applies(environ: dict) -> bool:
    """Token-authenticated JSON; browser sessions and uploads go through Django (CSRF, multipart)."""
    return environ.get("HTTP_AUTHORIZATION", "").startswith("Token ") and environ.get(
        "CONTENT_TYPE", "").startswith("application/json")


def token_viewer(request) -> str:
    return tokens.viewer_of(request.header("Authorization").removeprefix("Token ").strip())


def predictions(request) -> tuple[int, dict]:
    if not isinstance(request.body, dict):
        raise AppError("invalid", "The body must be a JSON object.")
    return 201, services.prediction_create(username=request.caller, payload=request.body)
