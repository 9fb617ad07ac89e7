"""Webhook deliveries, from the task queue's `webhooks` queue (its own worker: `manage.py webhook_worker`, so a
training never holds an event back and a receiver that hangs holds up nothing but its own delivery).

`webhooks_tick` claims the due deliveries from storage_svc's outbox (storage_svc/registry/events.py), sends each
signed (kit/webhooks.py) to a destination checked again at sending time (its host resolved now: public addresses
only, unless the platform allows private ones), at most `webhook_timeout_s` each and several at once, reports each
outcome (storage schedules the retries with back-off), and comes back after `webhook_tick_s`. Every few minutes it
also asks storage for today's drift of production, which raises the day's `drift.alert` when it is significant.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import timedelta
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.utils import timezone
from django_tasks import task

from kit.errors import AppError
from kit.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    destination,
    signature,
)
from ml_svc import peers

logger = logging.getLogger(__name__)

QUEUE = "webhooks"
CLAIM = 16  # deliveries per tick
SENDERS = 8  # deliveries sent at once
DRIFT_EVERY_S = 300.0
_drift_checked_at = [float("-inf")]


def body_of(delivery: dict) -> bytes:
    """What a receiver gets: the event, with which delivery and attempt this is."""
    event = delivery["event"]
    return json.dumps({"id": event["id"], "type": event["type"], "created_at": event["created_at"],
                       "delivery": delivery["id"], "attempt": delivery["attempt"], "data": event["data"]},
                      separators=(",", ":"), sort_keys=True).encode()


def send(delivery: dict) -> tuple[int | None, str]:
    """POST one delivery; (the status it was answered, or None, and why it did not succeed). The host is resolved
    and checked once, and the connection goes to the checked address (TLS still verifies the host's name): a name
    that resolves elsewhere the second time cannot lead inside. No proxy, no redirect, and the answer's body is not
    read."""
    problem, addresses = destination(delivery["url"], allow_private=delivery["allow_private"])
    if problem:
        return None, f"refused: {problem}"
    parts = urlsplit(delivery["url"])
    body, timestamp = body_of(delivery), int(time.time())
    headers = {"Host": parts.netloc, "Content-Type": "application/json", "User-Agent": "DigitLab-Webhooks/1",
               EVENT_HEADER: delivery["event"]["type"], DELIVERY_HEADER: str(delivery["id"]),
               TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(delivery["secret"], timestamp, body)}
    timeout = settings.WEBHOOK_TIMEOUT_S
    pool = urllib3.HTTPSConnectionPool(
        addresses[0], parts.port or 443, server_hostname=parts.hostname, assert_hostname=parts.hostname,
        cert_reqs="CERT_REQUIRED", ca_certs=settings.WEBHOOK_CA_BUNDLE or None, retries=False, maxsize=1,
        timeout=urllib3.Timeout(connect=timeout, read=timeout))
    try:
        answer = pool.urlopen("POST", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body,
                              headers=headers, redirect=False, preload_content=False, retries=False)
        answer.close()
    except urllib3.exceptions.TimeoutError:
        return None, f"no answer within {timeout:g} s"
    except urllib3.exceptions.HTTPError as exc:
        cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
        return None, f"could not connect: {type(cause).__name__}"
    finally:
        pool.close()
    if 200 <= answer.status < 300:
        return answer.status, ""
    return answer.status, f"answered {answer.status}"


def deliver_due() -> int:
    """Send what is due now, several at once; how many were sent. A delivery not done within its time (a receiver
    that drips its answer byte by byte escapes the per-read timeout) is reported as a timeout, and the tick goes on."""
    storage = peers.storage()
    claimed = storage.claim_deliveries(limit=CLAIM, lease_s=settings.WEBHOOK_TIMEOUT_S * 2 + 10)
    if not claimed:
        return 0
    pool = ThreadPoolExecutor(min(SENDERS, len(claimed)), thread_name_prefix="webhook")
    futures = [pool.submit(send, delivery) for delivery in claimed]
    wait(futures, timeout=settings.WEBHOOK_TIMEOUT_S * 2 + 1)
    pool.shutdown(wait=False, cancel_futures=True)
    late = (None, f"no complete answer within {settings.WEBHOOK_TIMEOUT_S * 2 + 1:g} s")
    for delivery, future in zip(claimed, futures, strict=True):
        status_code, error = future.result() if future.done() and not future.cancelled() else late
        if error:
            logger.warning("webhook delivery %s to %s, attempt %s: %s", delivery["id"], delivery["url"],
                           delivery["attempt"], error)
        try:
            storage.delivery_result(delivery["id"], attempt=delivery["attempt"], status_code=status_code, error=error)
        except AppError as exc:  # its lease ran out and another worker took it: that one reports
            logger.warning("webhook delivery %s: outcome not recorded (%s)", delivery["id"], exc.message)
    return len(claimed)


TICK_SPAN_S = 10.0  # one tick looks for due deliveries every webhook_tick_s for this long, then queues the next


@task(queue_name=QUEUE)
def webhooks_tick() -> None:
    """Send what is due every `webhook_tick_s` for TICK_SPAN_S (a task every few seconds, not every second: the
    queue's table and the worker's log stay small), then queue the next tick and forget the finished ones."""
    ends = time.monotonic() + TICK_SPAN_S
    try:
        while True:
            try:
                deliver_due()
                if time.monotonic() - _drift_checked_at[0] >= DRIFT_EVERY_S:
                    _drift_checked_at[0] = time.monotonic()
                    peers.storage().production_drift()
            except AppError as exc:  # storage away: the next look tries again
                logger.warning("webhooks tick: %s", exc.message)
            if time.monotonic() + settings.WEBHOOK_TICK_S >= ends:
                break
            time.sleep(settings.WEBHOOK_TICK_S)
    finally:
        ensure_tick(after_s=settings.WEBHOOK_TICK_S)
        _forget_finished_ticks()


def _ticks():
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(queue_name=QUEUE, task_path=webhooks_tick.module_path)


def ensure_tick(after_s: float = 0.0) -> None:
    """Queue the next tick unless one is queued already (the chain of ticks is one, whoever starts it)."""
    from django_tasks.base import TaskResultStatus

    if not _ticks().filter(status=TaskResultStatus.READY).exists():
        webhooks_tick.using(run_after=timezone.now() + timedelta(seconds=after_s)).enqueue()


def _forget_finished_ticks() -> None:
    from django_tasks.base import TaskResultStatus

    _ticks().filter(status__in=(TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)).delete()
