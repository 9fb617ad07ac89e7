"""Safe rollout, the gateway side: the promotion gate, the candidate's canary share, and what the pages show of
both (shadow figures, gate status, the last automatic rollback).

The gate judges a promotion to production of a version that has never served (or that the platform rolled back): on
production's held-out digits (ml_svc's comparison, both versions in float32) its accuracy may be at most
`gate_max_accuracy_drop` below production's, and shadow scoring must have seen it on at least
`gate_min_shadow_predictions` live predictions, agreeing with production on at least `gate_min_agreement` of them. A
version that served before (a rollback) and a first production pass. An admin may promote past a refusal with a reason: the ledger records an `override` with
the gate's figures.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gateway_site import peers
from gateway_site.accounts.models import audit
from kit.contracts import gateway
from kit.errors import AppError, PeerUnavailable

logger = logging.getLogger(__name__)
ALERT_HOURS = 24  # an automatic rollback stays on the dashboard this long


def gate(version_id: int, state: dict | None = None) -> gateway.Gate:
    """Whether promoting `version_id` to production passes the gate, with each check's figures."""
    storage = peers.storage()
    state = state or storage.rollout()
    production = state["production"]
    if production is None:
        return _verdict(version_id, [], "Nothing serves yet: the first production needs no gate.")
    if production["id"] == version_id:
        return _verdict(version_id, [], "This version is production already.")
    history = storage.alias_ledger(version=version_id, alias="production", page_size=500)["results"]
    served = any(change["to_version"] == version_id for change in history)
    rolled_back = any(c["action"] == "auto-rollback" and c["from_version"] == version_id for c in history)
    if served and not rolled_back:
        return _verdict(version_id, [], "This version served before: rolling back to it is never gated.")
    return _verdict(version_id, [_held_out_check(production["id"], version_id),
                                 _shadow_check(storage.shadow(version_id))], None, production["id"])


def _verdict(version_id: int, checks: list[dict], exempt: str | None, production_id: int | None = None) -> dict:
    return {"model_version": version_id, "production": production_id, "passed": all(c["passed"] for c in checks),
            "exempt": exempt, "checks": checks}


def _held_out_check(production_id: int, version_id: int) -> dict:
    check = {"name": "held_out_accuracy", "max_drop": settings.GATE_MAX_ACCURACY_DROP}
    try:
        comparison = peers.ml().compare(production_id, version_id)
    except PeerUnavailable:
        raise
    except AppError as exc:  # e.g. a version whose weights fail their check: it cannot pass, an override may
        return {**check, "passed": False, "production": None, "candidate": None,
                "summary": f"could not compare with production: {exc.message}"}
    accuracy = comparison["accuracy"]
    passed = accuracy["candidate"] >= accuracy["baseline"] - settings.GATE_MAX_ACCURACY_DROP
    return {**check, "passed": passed, "production": accuracy["baseline"], "candidate": accuracy["candidate"],
            "evaluated_on": comparison["evaluated_on"],
            "summary": (f"{accuracy['candidate']:.2%} on production's {comparison['evaluated_on']} held-out digits "
                        f"against production's {accuracy['baseline']:.2%} (at most "
                        f"{settings.GATE_MAX_ACCURACY_DROP:.2%} lower allowed)")}


def _shadow_check(shadow: dict) -> dict:
    count, agreement = shadow["count"], shadow["agreement"]
    needed, floor = settings.GATE_MIN_SHADOW_PREDICTIONS, settings.GATE_MIN_AGREEMENT
    passed = count >= needed and (agreement or 0.0) >= floor
    if count < needed:
        summary = f"shadow-scored on {count} live predictions; {needed} needed"
    else:
        summary = f"agreed with production on {agreement:.1%} of {count} live predictions ({floor:.0%} needed)"
    return {"name": "shadow_agreement", "passed": passed, "count": count, "required": needed,
            "agreement": agreement, "min_agreement": floor, "summary": summary}


def shadow(version_id: int) -> dict:
    """A version's live record (storage_svc's shadow figures)."""
    return peers.storage().shadow(version_id)


def promote(*, username: str, version_id: int, alias: str, reason: str, override: bool) -> tuple[dict, bool]:
    """Point `alias` at the version; to production only through the gate, or past it with `override` and a reason.
    (The alias, whether the move went past a refusing gate.)"""
    action, details = "move", {}
    if override and not reason.strip():
        raise AppError("invalid", "Say why you override the gate: the reason goes into the ledger.",
                       details={"reason": "required with override"})
    if alias == "production":
        verdict = gate(version_id)
        if not verdict["passed"]:
            if not override:
                audit(actor=username, action="model.promote.refused", target=f"model:{version_id}",
                      details={"gate": verdict})
                _tell_webhooks("gate.refused", {"model_version": version_id, "actor": username, "gate": verdict})
                failed = "; ".join(c["summary"] for c in verdict["checks"] if not c["passed"])
                raise AppError("gate_refused", f"The promotion gate refused v{version_id}: {failed}. An admin may "
                               "override it with a reason.", status=409, details={"gate": verdict})
            action, details = "override", {"gate": verdict}
    result = peers.storage().set_alias(alias, model_version_id=version_id, actor=username, reason=reason,
                                       action=action, details=details)
    audit(actor=username, action="model.promote", target=f"model:{version_id}",
          details={"alias": alias, "reason": reason, "override": action == "override"})
    return result, action == "override"


def _tell_webhooks(event_type: str, data: dict) -> None:
    """An event the gateway witnessed, for the webhooks; the refusal is answered whether or not storage hears of it."""
    try:
        peers.storage().emit_event(event_type, data)
    except AppError as exc:
        logger.warning("%s not recorded for webhooks: %s", event_type, exc.message)


def canary(*, username: str, share: float, reason: str) -> dict:
    """Route `share` (0-0.5) of users to the candidate, each always to the same version."""
    state = peers.storage().set_canary(share=share, actor=username, reason=reason)
    audit(actor=username, action="rollout.canary", target=f"model:{state['candidate']['id']}",
          details={"share": share, "reason": reason})
    return state


def overview() -> gateway.Rollout:
    """What the Console, Models page and dashboard show: what serves, the canary, the candidate's shadow figures and
    gate, and the last automatic rollback if it is recent."""
    storage = peers.storage()
    state = storage.rollout()
    candidate = state["candidate"]
    live = candidate is not None and (state["production"] is None or candidate["id"] != state["production"]["id"])
    return {
        **state,
        "shadow": storage.shadow(candidate["id"]) if live else None,
        "gate": gate(candidate["id"], state) if live else None,
        "alert": recent_rollback(),
    }


def recent_rollback() -> dict | None:
    """The newest automatic rollback, if it happened within ALERT_HOURS."""
    rollbacks = peers.storage().alias_ledger(action="auto-rollback", page_size=1)["results"]
    if not rollbacks:
        return None
    changed_at = parse_datetime(rollbacks[0]["changed_at"])
    return rollbacks[0] if changed_at and changed_at > timezone.now() - timedelta(hours=ALERT_HOURS) else None


def webhook_register(*, username: str, url: str, events: list[str]) -> dict:
    """Register an HTTPS endpoint for events; the answer carries its signing secret, shown this once."""
    hook = peers.storage().create_webhook(url=url, events=events, created_by=username)
    audit(actor=username, action="webhook.create", target=f"webhook:{hook['id']}", details={"url": url, "events": events})
    return hook


def webhook_delete(*, username: str, webhook_id: int) -> None:
    peers.storage().delete_webhook(webhook_id)
    audit(actor=username, action="webhook.delete", target=f"webhook:{webhook_id}")

