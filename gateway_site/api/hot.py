"""`POST /api/predictions` with an API token and a JSON body, served through kit.hotpath (wsgi.py).

The same scenario as the DRF view (services.prediction_create), without Django's request machinery.
A token's check (user, active, role) is remembered for `token_cache_s`: a revoked token or a changed
role takes effect within that time in other processes, at once in the one that made the change.
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import DatabaseError, connection
from rest_framework.authtoken.models import Token

from accounts.roles import has_role
from api import services
from kit.errors import AppError

_checked: dict[str, tuple[str | None, bool, float]] = {}  # key -> (username or None, is viewer, until)
_lock = threading.Lock()


def applies(environ: dict) -> bool:
    """Token-authenticated JSON; browser sessions and uploads go through Django (CSRF, multipart)."""
    return environ.get("HTTP_AUTHORIZATION", "").startswith("Token ") and environ.get(
        "CONTENT_TYPE", "").startswith("application/json")


def token_viewer(request) -> str:
    key = request.header("Authorization").removeprefix("Token ").strip()
    now = time.monotonic()
    entry = _checked.get(key)
    if entry is None or entry[2] < now:
        try:
            token = Token.objects.select_related("user").filter(key=key).first()
        except DatabaseError:
            # Outside Django's request cycle nothing else drops a connection the database closed (a restart):
            # drop it here, so that the next check connects afresh.
            connection.close()
            raise
        user = token.user if token is not None and token.user.is_active else None
        entry = (user.get_username() if user else None, bool(user) and has_role(user, "viewer"),
                 now + settings.TOKEN_CACHE_S)
        with _lock:
            if len(_checked) > 10_000:
                _checked.clear()
            _checked[key] = entry
    if entry[0] is None:
        raise AppError("authentication_failed", "Invalid token.", status=401)
    if not entry[1]:
        raise AppError("permission_denied", "This needs the viewer role.", status=403)
    return entry[0]


def forget_tokens() -> None:
    """Drop every remembered check (a token was revoked or a role changed in this process)."""
    with _lock:
        _checked.clear()


def predictions(request) -> tuple[int, dict]:
    if not isinstance(request.body, dict):
        raise AppError("invalid", "The body must be a JSON object.")
    return 201, services.prediction_create(username=request.caller, payload=request.body)
