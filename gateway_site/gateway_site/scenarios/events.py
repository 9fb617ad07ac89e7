"""A run's progress as server-sent events (`GET /api/runs/{id}/events`).

A `progress` event each time the run changes (its fields as `GET /api/runs/{id}` answers them), an `end` event
with the outcome, then the stream ends. Each event's id grows with the run (progress, which the worker never moves
back, then the status), so a client that reconnects with `Last-Event-ID` gets only what it has not seen. The stream
reads the run from storage every `poll_s`; while nothing changes it sends a comment every KEEPALIVE_S so that no
proxy closes it, and it ends after MAX_STREAM_S (the browser reconnects and resumes). A process holds at most
MAX_STREAMS open at once (each holds a thread); past that a watcher gets a 503 and the page polls instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

from django.db import connection

from gateway_site import peers
from gateway_site.scenarios import selectors
from kit.contracts import storage
from kit.errors import AppError

FINISHED = ("succeeded", "failed", "cancelled")
KEEPALIVE_S = 15.0
MAX_STREAM_S = 900.0
MAX_STREAMS = 64  # per gateway process, of its 96 threads: a third stays for everything else
RETRY_MS = 2000
_open = threading.BoundedSemaphore(MAX_STREAMS)


def event_id(run: storage.Run) -> int:
    """Grows with every change a watcher cares about: progress first, then the status."""
    rank = 3 if run["status"] in FINISHED else {"queued": 0, "running": 1}.get(run["status"], 2)
    return round(float(run["progress"]) * 100_000) * 4 + rank


def _news(run: storage.Run, sent: storage.Run) -> bool:
    """Whether a watcher learns anything from the run since `sent`: a worker's heartbeat alone is not news."""
    return any(run[key] != sent.get(key) for key in run if key != "heartbeat_at")


def frame(kind: str, run: storage.Run) -> str:
    return f"id: {event_id(run)}\nevent: {kind}\ndata: {json.dumps(run, separators=(',', ':'))}\n\n"


class Stream:
    """The stream's lines; closing it (Django does when the response ends, started or not) frees its place."""

    def __init__(self, lines: Iterator[str]):
        self.lines = lines
        self.closed = False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            return next(self.lines)
        except BaseException:  # the end, or a failure: either way its place is free
            self.close()
            raise

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.lines.close()
            _open.release()


def run_events(user, run_id: int, last_event_id: int | None, *, poll_s: float = 1.0, max_s: float | None = None,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Stream:
    """The events of run `run_id` as `user` may see it (another user's run is a 404 before the stream starts)."""
    run = selectors.run_for(user, run_id)
    limit = MAX_STREAM_S if max_s is None else max_s
    if not _open.acquire(blocking=False):
        raise AppError("busy", "Too many run streams are open here; poll GET /api/runs/{id} instead.", status=503,
                       retry_after=5)
    if not connection.in_atomic_block:
        connection.close()  # a stream holds a thread for minutes, not a database connection too

    def lines() -> Iterator[str]:
        nonlocal run
        seen = -1 if last_event_id is None else last_event_id
        sent = None
        started = quiet_since = clock()
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            if run["status"] in FINISHED:
                yield frame("end", run)  # said again to a watcher that resumes after the end
                return
            if event_id(run) > seen or (sent is not None and _news(run, sent)):
                seen, sent, quiet_since = max(seen, event_id(run)), run, clock()
                yield frame("progress", run)
            elif clock() - quiet_since >= KEEPALIVE_S:
                quiet_since = clock()
                yield ": keep-alive\n\n"
            if clock() - started >= limit:
                return
            sleep(poll_s)
            try:
                run = peers.storage().get_run(run_id)
            except AppError as exc:
                if exc.status < 500:
                    raise
                yield f": {exc.message}; retrying\n\n"

    return Stream(lines())
