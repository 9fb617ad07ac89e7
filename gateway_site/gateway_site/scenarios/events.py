"""A run's progress as server-sent events (`GET /api/runs/{id}/events`).

One `progress` event each time the run changes (its fields as `GET /api/runs/{id}` answers them), an `end` event
with the outcome, then the stream ends. Each event's id grows with the run (progress, then status), so a client
that reconnects with `Last-Event-ID` gets only what it has not seen. The stream reads the run from storage every
`poll_s`; while nothing changes it sends a comment every KEEPALIVE_S so that no proxy closes it, and it ends after
MAX_STREAM_S (the browser reconnects and resumes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

from gateway_site import peers
from gateway_site.scenarios import selectors
from kit.contracts import storage
from kit.errors import PeerUnavailable

FINISHED = ("succeeded", "failed", "cancelled")
KEEPALIVE_S = 15.0
MAX_STREAM_S = 900.0
RETRY_MS = 2000


def event_id(run: storage.Run) -> int:
    """Grows with every change a watcher cares about: progress first, then the status."""
    rank = 3 if run["status"] in FINISHED else {"queued": 0, "running": 1}.get(run["status"], 2)
    return round(float(run["progress"]) * 100_000) * 4 + rank


def frame(kind: str, run: storage.Run) -> str:
    return f"id: {event_id(run)}\nevent: {kind}\ndata: {json.dumps(run, separators=(',', ':'))}\n\n"


def run_events(user, run_id: int, last_event_id: int | None, *, poll_s: float = 1.0, max_s: float | None = None,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """The events of run `run_id` as `user` may see it (another user's run is a 404 before the stream starts)."""
    run = selectors.run_for(user, run_id)
    limit = MAX_STREAM_S if max_s is None else max_s

    def stream() -> Iterator[str]:
        nonlocal run
        seen = -1 if last_event_id is None else last_event_id
        started = quiet_since = clock()
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            finished = run["status"] in FINISHED
            if finished:
                yield frame("end", run)  # said again to a watcher that resumes after the end
                return
            if event_id(run) > seen:
                seen = event_id(run)
                quiet_since = clock()
                yield frame("progress", run)
            elif clock() - quiet_since >= KEEPALIVE_S:
                quiet_since = clock()
                yield ": keep-alive\n\n"
            if clock() - started >= limit:
                return
            sleep(poll_s)
            try:
                run = peers.storage().get_run(run_id)
            except PeerUnavailable:
                yield ": storage is unavailable; retrying\n\n"

    return stream()
