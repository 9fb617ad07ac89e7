"""API tokens: who a token belongs to and whether that user may predict, remembered for `token_cache_s`.

The hot prediction path asks here for every request; a revoked token or a changed user or role is forgotten at
once in the process that made the change (accounts.apps connects the signals) and within `token_cache_s` in others.
"""

from __future__ import annotations

import threading
import time
import zlib

from django.conf import settings
from django.db import connection
from rest_framework.authtoken.models import Token

from gateway_site.accounts.roles import has_role
from kit.errors import AppError

_checked: dict[str, tuple[str | None, bool, float]] = {}  # key -> (username or None, is viewer, until)
_lock = threading.Lock()
# A token is checked by one thread at a time (its stripe's lock); other tokens' checks go on beside it, at most
# CHECK_STRIPES at once per process, each on a connection it closes.
CHECK_STRIPES = 8
_check_locks = [threading.Lock() for _ in range(CHECK_STRIPES)]


def viewer_of(key: str) -> str:
    """The username behind token `key` if that user may predict (the viewer role); 401 or 403 if not."""
    entry = _checked.get(key)
    if entry is None or entry[2] < time.monotonic():
        entry = _check(key)
    if entry[0] is None:
        raise AppError("authentication_failed", "Invalid token.", status=401)
    if not entry[1]:
        raise AppError("permission_denied", "This needs the viewer role.", status=403)
    return entry[0]


def stripe(key: str) -> int:
    return zlib.crc32(key.encode()) % CHECK_STRIPES


def _check(key: str) -> tuple[str | None, bool, float]:
    """Check a token in the database.

    When a busy token's entry expires, every thread serving it would check it at once, each on a connection of
    its own that Django then keeps: 2 processes x 96 threads is past PostgreSQL's 100 connections (measured: bursts
    of `too many clients` every token_cache_s under load). One thread checks it, on a connection it closes again;
    the others wait for its answer."""
    with _check_locks[stripe(key)]:
        entry = _checked.get(key)
        now = time.monotonic()
        if entry is not None and entry[2] >= now:
            return entry  # another thread checked it meanwhile
        try:
            token = Token.objects.select_related("user").filter(key=key).first()
            user = token.user if token is not None and token.user.is_active else None
            entry = (user.get_username() if user else None, bool(user) and has_role(user, "viewer"),
                     now + settings.TOKEN_CACHE_S)
        finally:
            # The hot path holds no connection between checks (this also drops one the database closed, e.g. in a
            # restart: outside Django's request cycle nothing else would); one a transaction uses is left to it.
            if not connection.in_atomic_block:
                connection.close()
        with _lock:
            if len(_checked) > 10_000:
                _checked.clear()
            _checked[key] = entry
        return entry


def forget_tokens() -> None:
    """Drop every remembered check (a token was revoked or a user or role changed in this process)."""
    with _lock:
        _checked.clear()
