"""Platform events and their webhook deliveries: the outbox.

`emit` writes an event, and a pending delivery for every active webhook subscribed to its type, inside the caller's
transaction: an alias move and its event commit together or not at all, and nothing waits for a receiver. ml_svc's
`webhooks` queue claims due deliveries (`deliveries_claim`: leased, so two workers never send one twice), sends
them signed, and reports each outcome (`delivery_result`): a 2xx delivers it; anything else is tried again after
`webhook_retry_base_s` x 2^(attempt - 1), until `webhook_max_attempts` attempts have failed.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from kit.errors import AppError
from kit.webhooks import EVENT_TYPES, destination_problem
from storage_svc.registry.models import Event, Webhook, WebhookDelivery

MAX_WEBHOOKS = 20


def emit(event_type: str, data: dict, *, key: str | None = None) -> Event | None:
    """Record an event for its subscribers; None when nobody listens (or `key` happened already)."""
    assert event_type in EVENT_TYPES, event_type
    hooks = [hook for hook in Webhook.objects.filter(active=True).only("id", "events") if event_type in hook.events]
    if not hooks:
        return None
    try:
        with transaction.atomic():
            event = Event.objects.create(type=event_type, data=data, key=key)
    except IntegrityError:  # the keyed event exists: it was emitted once already
        return None
    now = timezone.now()
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook_id=hook.id, event=event, next_attempt_at=now) for hook in hooks])
    return event


def webhook_create(*, url: str, events: list[str], created_by: str) -> Webhook:
    """Register an endpoint; its secret is made here and shown once, in this answer."""
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if not events or unknown:
        raise AppError("invalid", f"events must name some of {', '.join(EVENT_TYPES)}",
                       details={"events": f"unknown: {', '.join(unknown)}" if unknown else "required"})
    problem = destination_problem(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    if problem:
        raise AppError("invalid_destination", f"{problem}.", details={"url": problem})
    if Webhook.objects.count() >= MAX_WEBHOOKS:
        raise AppError("too_many_webhooks", f"At most {MAX_WEBHOOKS} webhooks: delete one first.", status=409)
    return Webhook.objects.create(url=url, events=sorted(set(events)), secret=secrets.token_hex(32),
                                  created_by=created_by)


def webhook_delete(*, webhook_id: int) -> None:
    deleted, _ = Webhook.objects.filter(pk=webhook_id).delete()
    if not deleted:
        raise AppError("not_found", f"webhook {webhook_id} does not exist", status=404)


@transaction.atomic
def deliveries_claim(*, limit: int, lease_s: float) -> list[dict]:
    """Up to `limit` due deliveries, each leased for `lease_s` (its attempt counted now): what to send where."""
    now = timezone.now()
    # A delivery whose last attempt's outcome never came back (its worker died) has had all its attempts.
    WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now,
                                   attempts__gte=settings.WEBHOOK_MAX_ATTEMPTS).update(
        status=WebhookDelivery.Status.FAILED, last_error="no outcome came back from its last attempt")
    due = list(WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
               .select_related("webhook", "event").filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at")[:limit])
    claimed = []
    for delivery in due:
        delivery.attempts += 1
        delivery.next_attempt_at = now + timedelta(seconds=lease_s)
        delivery.save(update_fields=["attempts", "next_attempt_at"])
        event = delivery.event
        claimed.append({"id": delivery.id, "attempt": delivery.attempts, "url": delivery.webhook.url,
                        "secret": delivery.webhook.secret, "allow_private": settings.WEBHOOK_ALLOW_PRIVATE,
                        "event": {"id": event.id, "type": event.type, "data": event.data,
                                  "created_at": event.created_at.isoformat().replace("+00:00", "Z")}})
    return claimed


@transaction.atomic
def delivery_result(*, delivery_id: int, attempt: int, status_code: int | None, error: str) -> WebhookDelivery:
    """Record an attempt's outcome: delivered on a 2xx, else another attempt after the back-off, or failed. Only the
    latest attempt may report (a worker whose lease ran out and whose delivery was claimed again may not)."""
    delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
    if delivery is None:
        raise AppError("not_found", f"delivery {delivery_id} does not exist", status=404)
    if delivery.status != WebhookDelivery.Status.PENDING:
        raise AppError("delivery_finished", f"delivery {delivery_id} is {delivery.status} already", status=409)
    if attempt != delivery.attempts:
        raise AppError("stale_attempt", f"attempt {attempt} of delivery {delivery_id} was superseded by attempt "
                       f"{delivery.attempts}", status=409)
    now = timezone.now()
    delivery.last_status_code, delivery.last_error = status_code, error[:300]
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at, delivery.last_error = WebhookDelivery.Status.DELIVERED, now, ""
    elif delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    else:
        delivery.next_attempt_at = now + timedelta(seconds=settings.WEBHOOK_RETRY_BASE_S * 2 ** (delivery.attempts - 1))
    delivery.save()
    return delivery
