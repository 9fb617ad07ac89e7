"""Per-user rate limits that hold across gateway processes and replicas (`gateway.rate_limit_*`).

Each limit allows a user `limit` units (predicted images, uploads, scenario starts) in a window of
`rate_window_s` seconds that starts with their first unit; past it the answer is 429 with Retry-After
(the seconds until the window ends). The counts live in the gateway database (`RateCounter`, one row
per user and limit), so every process and replica draws from the same allowance. A process charges
through one batcher thread (kit/batching.py): concurrent requests' charges go in one upsert, and a
process holds one extra database connection for it, not one per request thread. A refused charge
still counts; a user refused is refused in that process without asking the database until the window
ends. When the database cannot be asked, or does not answer within `CHARGE_WAIT_S`, the charge is let
through (and logged): a limit must not become an outage.

`one_batch_at_a_time(user)` keeps each user to one prediction batch in flight, so one user's heaviest
batches take at most one ml_svc worker: a PostgreSQL advisory lock (across processes and replicas),
a lock of this process on SQLite.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from contextlib import contextmanager

from django.conf import settings
from django.db import Error, connection, connections

from kit.batching import Batcher
from kit.errors import AppError

logger = logging.getLogger(__name__)

UPSERT = """
INSERT INTO api_ratecounter (key, used, window_end) VALUES {rows}
ON CONFLICT (key) DO UPDATE SET
  used = CASE WHEN api_ratecounter.window_end <= %s THEN EXCLUDED.used ELSE api_ratecounter.used + EXCLUDED.used END,
  window_end = CASE WHEN api_ratecounter.window_end <= %s THEN EXCLUDED.window_end ELSE api_ratecounter.window_end END
RETURNING key, used, window_end
"""
CHARGE_WAIT_S = 1.0
# The counting connection gives up quickly: a stalled database must not hold requests.
POSTGRES_OPTIONS = {"connect_timeout": 2, "options": "-c statement_timeout=1000 -c synchronous_commit=off"}
UNITS = {"predictions": "predicted images", "uploads": "uploaded samples", "scenarios": "started scenarios"}

_lock = threading.Lock()
_batcher: Batcher | None = None
_database = None  # the batcher thread's own connection to the gateway database
_refused_until: dict[str, float] = {}
_batch_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)


class RateLimited(AppError):
    def __init__(self, limit: str, allowed: int, window_s: float, retry_after: int):
        super().__init__("rate_limited", f"Too many {UNITS[limit]}: at most {allowed} in {window_s:g} s per user. "
                         f"Try again in {retry_after} s.", status=429, retry_after=retry_after,
                         details={"limit": limit, "allowed": allowed, "window_s": window_s})


def charge(username: str, limit: str, units: int = 1) -> None:
    """Count `units` of `limit` for `username`, or raise RateLimited (429) when that goes past the allowance."""
    allowed = settings.RATE_LIMITS[limit]
    if allowed <= 0:
        return
    key = f"{limit}:{username}"
    now = time.time()
    refused_until = _refused_until.get(key)
    if refused_until is not None:
        if refused_until > now:
            raise RateLimited(limit, allowed, settings.RATE_WINDOW_S, _seconds(refused_until - now))
        _refused_until.pop(key, None)
    try:
        verdict = _counter().submit((key, units, allowed), timeout_s=CHARGE_WAIT_S)
    except AppError as exc:  # the counting did not answer in time, or is overloaded
        logger.warning("rate limit of %s not checked: %s", key, exc.message)
        return
    if verdict is not None:
        _refused_until[key] = verdict
        if len(_refused_until) > 10_000:
            _refused_until.clear()
        raise RateLimited(limit, allowed, settings.RATE_WINDOW_S, _seconds(verdict - now))


@contextmanager
def one_batch_at_a_time(username: str):
    """Run the body while holding this user's batch lock, or refuse at once (429) while another batch runs."""
    busy = AppError("batch_in_progress", "Another prediction batch of yours is still running; send the next one "
                    "when it is answered.", status=429, retry_after=1)
    local = _batch_locks[username]
    if not local.acquire(blocking=False):
        raise busy
    try:
        if connection.vendor != "postgresql":
            yield
            return
        lock_id = batch_lock_id(username)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_id])
            if not cursor.fetchone()[0]:
                raise busy
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_id])
            except Error:
                connection.close()  # the session's end releases its locks; the batch's answer stands
    finally:
        local.release()


def batch_lock_id(username: str) -> int:
    """The PostgreSQL advisory lock held while `username`'s prediction batch runs."""
    return int.from_bytes(hashlib.sha256(f"batch:{username}".encode()).digest()[:8], "big", signed=True)


def close() -> None:
    """Stop this process's charging thread and close its database connection (tests; process exit)."""
    global _batcher, _database
    with _lock:
        batcher, _batcher = _batcher, None
        database, _database = _database, None
    if batcher is not None:
        batcher.close(5)
    if database is not None:
        database.close()


def _seconds(remaining: float) -> int:
    return max(1, int(remaining + 0.999))


def _counter() -> Batcher:
    global _batcher
    if _batcher is None:
        with _lock:
            if _batcher is None:
                _batcher = Batcher("rate-limit charges", _charge_many, max_items=256, max_wait_s=0.0,
                                   max_pending=4096)
    return _batcher


def _charge_many(items: list[tuple[str, int, int]]) -> list[float | None]:
    """One upsert for a batch of (key, units, allowed): for each item, None (let through) or when its window ends."""
    totals: dict[str, int] = defaultdict(int)
    for key, units, _ in items:
        totals[key] += units
    now = time.time()
    end = now + settings.RATE_WINDOW_S
    rows = ", ".join(["(%s, %s, %s)"] * len(totals))
    # Rows in key order: PostgreSQL locks them in the order given, and two processes' batches naming the same keys
    # in opposite orders would deadlock.
    params = [value for key, units in sorted(totals.items()) for value in (key, units, end)] + [now, now]
    global _database
    if _database is None:
        default = connections["default"]
        # A charge waits at most CHARGE_WAIT_S: the statement must not wait longer (SQLite's lock timeout too).
        options = POSTGRES_OPTIONS if default.vendor == "postgresql" else {"timeout": CHARGE_WAIT_S}
        _database = type(default)({**default.settings_dict, "OPTIONS": {**default.settings_dict["OPTIONS"], **options}},
                                  "default")
        _database.inc_thread_sharing()  # close() may come from another thread
    database = _database
    try:
        with database.cursor() as cursor:
            cursor.execute(UPSERT.format(rows=rows), params)
            counted = {key: (used, window_end) for key, used, window_end in cursor.fetchall()}
    except Error as exc:
        logger.warning("rate limits not checked, the gateway database failed: %s", exc)
        database.close()  # a connection the database dropped is opened afresh next time
        _database = None
        return [None] * len(items)
    verdicts: list[float | None] = []
    running = {key: counted[key][0] - total for key, total in totals.items()}  # what was used before this batch
    for key, units, allowed in items:
        running[key] += units
        verdicts.append(counted[key][1] if running[key] > allowed else None)
    return verdicts
