"""Group commit: concurrent callers' items handled together in one call, each caller waiting for its own result.

A request thread calls `submit(item)` and blocks; one flusher thread per batcher takes up to
`max_items` waiting items (waiting at most `max_wait_s` for more once the first arrived) and hands
them to `handle` in one call, which returns one result or AppError per item. A caller is answered
only after its batch was handled, so nothing it acknowledges can be lost in a buffer. While one
batch is being handled, the next one gathers: batches grow with the load and stay at one item
when the load is light.

A peer that is down (PeerUnavailable) makes the flusher retry the same batch with back-off until
the oldest item's deadline (`retry_for_s`); `handle` must therefore be idempotent (history rows
carry a request key). `close()` handles everything still waiting, then stops the thread.
Past `max_pending` waiting items, `submit` refuses at once with 503 `overloaded`. `submit_many` hands in several
items that are handled in the same call (never split between two), e.g. one request's batch of history rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any

from kit import tracing
from kit.errors import AppError, PeerUnavailable

logger = logging.getLogger(__name__)


class Overloaded(AppError):
    def __init__(self, what: str, retry_after: int = 1):
        super().__init__("overloaded", f"The service is at capacity ({what}); retry shortly.", status=503,
                         retry_after=retry_after)


class Batcher:
    def __init__(self, name: str, handle: Callable[[list[Any]], Sequence[Any]], *, max_items: int = 64,
                 max_wait_s: float = 0.001, max_pending: int = 1024, retry_for_s: float = 0.0):
        self.name = name
        self.handle = handle
        self.max_items = max_items
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.retry_for_s = retry_for_s
        # (items, their futures, time handed in, the caller's trace context or None)
        self._pending: list[tuple[list[Any], list[Future], float, Any]] = []
        self._waiting = 0  # items in _pending
        self._condition = threading.Condition()
        self._closing = False
        self.batches = 0  # handled batches
        self._thread = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    def submit(self, item: Any, timeout_s: float = 30.0) -> Any:
        """Handle `item` with others; its result, or the AppError `handle` gave for it."""
        result = self.submit_many([item], timeout_s)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def submit_many(self, items: list[Any], timeout_s: float = 30.0) -> list[Any]:
        """Handle `items` together, in one call of `handle` (with others' items); each one's result or AppError (a
        failure of the whole call, e.g. a peer down past `retry_for_s`, is every item's)."""
        futures = [Future() for _ in items]
        with self._condition:
            if self._closing:
                raise Overloaded(f"{self.name} is shutting down")
            if self._waiting and self._waiting + len(items) > self.max_pending:
                raise Overloaded(f"{self._waiting} {self.name} items waiting")
            self._pending.append((list(items), futures, time.monotonic(), tracing.current_context()))
            self._waiting += len(items)
            self._condition.notify()
        deadline = time.monotonic() + timeout_s
        results: list[Any] = []
        for future in futures:
            try:
                results.append(future.result(timeout=max(deadline - time.monotonic(), 0)))
            except FutureTimeout:
                raise AppError("timeout", f"{self.name} did not finish within {timeout_s:g} s.", status=503) from None
            except AppError as exc:
                results.append(exc)
        return results

    @property
    def waiting(self) -> int:
        return self._waiting

    def close(self, timeout_s: float = 30.0) -> None:
        """Handle every item still waiting, then stop."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join(timeout_s)

    def _take(self) -> list[tuple[list[Any], list[Future], float, Any]] | None:
        with self._condition:
            while not self._pending and not self._closing:
                self._condition.wait()
            if not self._pending:
                return None
            linger_until = self._pending[0][2] + self.max_wait_s
            while self._waiting < self.max_items and not self._closing:
                remaining = linger_until - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            taken, count = 0, 0  # whole entries up to max_items items (an entry larger than that goes alone)
            while taken < len(self._pending) and (taken == 0 or count + len(self._pending[taken][0]) <= self.max_items):
                count += len(self._pending[taken][0])
                taken += 1
            batch, self._pending = self._pending[:taken], self._pending[taken:]
            self._waiting -= count
            return batch

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            self._handle(batch)

    def _handle(self, batch: list[tuple[list[Any], list[Future], float, Any]]) -> None:
        if not tracing.on():
            self._handle_batch(batch)
            return
        with tracing.batch_span(self.name, [entry[3] for entry in batch], sum(len(entry[0]) for entry in batch)):
            self._handle_batch(batch)

    def _handle_batch(self, batch: list[tuple[list[Any], list[Future], float, Any]]) -> None:
        items = [item for entry in batch for item in entry[0]]
        futures = [future for entry in batch for future in entry[1]]
        deadline = batch[0][2] + self.retry_for_s
        pause = 0.05
        while True:
            try:
                results = self.handle(items)
                break
            except PeerUnavailable as exc:
                if time.monotonic() + pause > deadline:
                    for future in futures:
                        future.set_exception(exc)
                    return
                logger.warning("%s: %s; retrying %d items in %.2f s", self.name, exc.message, len(items), pause)
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
            except Exception as exc:  # noqa: BLE001 -- every waiting caller must be answered
                if not isinstance(exc, AppError):
                    logger.exception("%s: handling a batch of %d failed", self.name, len(items))
                for future in futures:
                    future.set_exception(exc)
                return
        self.batches += 1
        for future, result in zip(futures, results, strict=True):
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class Admission:
    """At most `limit` requests inside at once; the next is refused at once with 503 and Retry-After,
    so past capacity a caller learns it in a millisecond instead of queueing into a timeout."""

    def __init__(self, limit: int, what: str):
        self.limit = limit
        self.what = what
        self.inside = 0
        self._condition = threading.Condition()

    @contextmanager
    def __call__(self):
        with self._condition:
            if self.inside >= self.limit:
                raise Overloaded(f"{self.inside} {self.what}")
            self.inside += 1
        try:
            yield
        finally:
            with self._condition:
                self.inside -= 1
                self._condition.notify_all()

    def drain(self, timeout_s: float) -> bool:
        """Wait until nobody is inside; False if that took longer than `timeout_s`."""
        with self._condition:
            return self._condition.wait_for(lambda: self.inside == 0, timeout_s)
