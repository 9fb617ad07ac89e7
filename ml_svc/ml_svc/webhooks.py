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
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from django.conf import settings
from django.utils import timezone
from django_tasks import task

from kit.errors import AppError
from kit.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    destination_problem,
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
    """POST one delivery; (the status it was answered, or None, and why it did not succeed)."""
    problem = destination_problem(delivery["url"], allow_private=delivery["allow_private"])
    if problem:
        return None, f"refused: {problem}"
    body, timestamp = body_of(delivery), int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "DigitLab-Webhooks/1",
               EVENT_HEADER: delivery["event"]["type"], DELIVERY_HEADER: str(delivery["id"]),
               TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(delivery["secret"], timestamp, body)}
    try:
        answer = requests.post(delivery["url"], data=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT_S,
                               allow_redirects=False, verify=settings.WEBHOOK_CA_BUNDLE or True)
    except requests.Timeout:
        return None, f"no answer within {settings.WEBHOOK_TIMEOUT_S:g} s"
    except requests.RequestException as exc:
        return None, f"could not connect: {type(exc).__name__}"
    if 200 <= answer.status_code < 300:
        return answer.status_code, ""
    return answer.status_code, f"answered {answer.status_code}"


def deliver_due() -> int:
    """Send what is due now; how many were sent."""
    storage = peers.storage()
    claimed = storage.claim_deliveries(limit=CLAIM, lease_s=settings.WEBHOOK_TIMEOUT_S * 2 + 10)
    if not claimed:
        return 0
    with ThreadPoolExecutor(min(SENDERS, len(claimed))) as pool:
        outcomes = list(pool.map(send, claimed))
    for delivery, (status_code, error) in zip(claimed, outcomes, strict=True):
        if error:
            logger.warning("webhook delivery %s to %s, attempt %s: %s", delivery["id"], delivery["url"],
                           delivery["attempt"], error)
        try:
            storage.delivery_result(delivery["id"], status_code=status_code, error=error)
        except AppError as exc:  # its lease ran out and another worker took it: that one reports
            logger.warning("webhook delivery %s: outcome not recorded (%s)", delivery["id"], exc.message)
    return len(claimed)


@task(queue_name=QUEUE)
def webhooks_tick() -> None:
    try:
        deliver_due()
        if time.monotonic() - _drift_checked_at[0] >= DRIFT_EVERY_S:
            _drift_checked_at[0] = time.monotonic()
            peers.storage().production_drift()
    except AppError as exc:  # storage away: the next tick tries again
        logger.warning("webhooks tick: %s", exc.message)
    finally:
        ensure_tick(after_s=settings.WEBHOOK_TICK_S)


def ensure_tick(after_s: float = 0.0) -> None:
    """Queue the next tick unless one is queued already (the chain of ticks is one, whoever starts it)."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    queued = DBTaskResult.objects.filter(queue_name=QUEUE, status=TaskResultStatus.READY,
                                         task_path=webhooks_tick.module_path)
    if not queued.exists():
        webhooks_tick.using(run_after=timezone.now() + timedelta(seconds=after_s)).enqueue()
