"""Safe rollout, the domain side: what serves (production, the candidate and its canary share), what shadow scoring
found, and the automatic rollback of a promotion whose live correction rate is worse than its predecessor's.

- The canary share is the candidate alias's `traffic_share`; every change is a ledger row (`canary`), and a new
  candidate starts at 0 (an admin opens its canary, never a training).
- Shadow figures come from the predictions that carry the candidate's answer beside production's
  (`shadow_version`, `shadow_digit`, `shadow_confidence`, written by the gateway's history batch).
- A correction is a user's label that differs from the answer. After each one, `auto_rollback_check` compares
  production's correction rate over its last `rollback_window` live predictions (a scored file's are not) since its
  promotion with the former production's over its last `rollback_window` before it; past `rollback_margin`,
  production moves back (`auto-rollback` in the ledger, with the figures). A move that undoes the one before it (an
  admin's rollback of the last promotion) is not watched.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, F, Q
from django.utils import timezone

from kit.errors import AppError
from storage_svc.registry import events, services
from storage_svc.registry.models import Alias, AliasChange, ModelVersion, Prediction

logger = logging.getLogger(__name__)

MAX_CANARY_SHARE = 0.5
SYSTEM = "system"


def state() -> dict:
    """{"production": version | None, "candidate": version | None, "canary_share"}: what serves, in one read."""
    aliases = {alias.name: alias for alias in Alias.objects.select_related("model_version")}
    production, candidate = aliases.get(Alias.Name.PRODUCTION), aliases.get(Alias.Name.CANDIDATE)
    return {
        "production": production.model_version if production else None,
        "candidate": candidate.model_version if candidate else None,
        "canary_share": candidate.traffic_share if candidate else 0.0,
    }


@transaction.atomic
def canary_set(*, share: float, actor: str, reason: str = "") -> Alias:
    """Route `share` (0-0.5) of users to the candidate; the change goes into the ledger."""
    if not 0.0 <= share <= MAX_CANARY_SHARE:
        raise AppError("invalid", f"share must be between 0 and {MAX_CANARY_SHARE}", details={"share": share})
    candidate = Alias.objects.select_for_update().filter(name=Alias.Name.CANDIDATE).first()
    if candidate is None:
        raise AppError("no_candidate", "There is no candidate to send traffic to: train one first.", status=409)
    production = Alias.objects.filter(name=Alias.Name.PRODUCTION).values_list("model_version_id", flat=True).first()
    if share > 0 and production == candidate.model_version_id:
        raise AppError("candidate_is_production", "The candidate already serves as production.", status=409)
    before = candidate.traffic_share
    candidate.traffic_share = share
    candidate.save(update_fields=["traffic_share", "updated_at"])
    AliasChange.objects.create(alias=Alias.Name.CANDIDATE, action=AliasChange.Action.CANARY,
                               from_version_id=candidate.model_version_id, to_version_id=candidate.model_version_id,
                               actor=actor, reason=reason, details={"from": before, "to": share})
    return candidate


def shadow_stats(*, version_id: int) -> dict:
    """What the live traffic says of `version_id` against the versions that answered it: shadow answers (count,
    agreement, confusion production x candidate, mean confidences, accuracy of each on the corrected ones), and its
    canary answers (count, corrections)."""
    if not ModelVersion.objects.filter(pk=version_id).exists():
        raise AppError("not_found", f"model version {version_id} does not exist", status=404)
    shadowed = Prediction.objects.filter(shadow_version_id=version_id)
    corrected = Q(corrected_label__isnull=False)
    totals = shadowed.aggregate(
        count=Count("id"), agreed=Count("id", filter=Q(digit=F("shadow_digit"))),
        production_confidence=Avg("confidence"), candidate_confidence=Avg("shadow_confidence"),
        corrected=Count("id", filter=corrected),
        production_right=Count("id", filter=corrected & Q(corrected_label=F("digit"))),
        candidate_right=Count("id", filter=corrected & Q(corrected_label=F("shadow_digit"))),
    )
    confusion = [[0] * 10 for _ in range(10)]
    for digit, shadow_digit, count in shadowed.order_by().values_list("digit", "shadow_digit").annotate(n=Count("id")):
        confusion[digit][shadow_digit] = count
    against = sorted(set(shadowed.order_by().values_list("model_version_id", flat=True).distinct()[:20]))
    count, labelled = totals["count"], totals["corrected"]
    answered = Prediction.objects.filter(model_version_id=version_id).aggregate(
        count=Count("id"), corrected=Count("id", filter=corrected & ~Q(corrected_label=F("digit"))))
    return {
        "model_version": version_id,
        "count": count,
        "agreement": round(totals["agreed"] / count, 5) if count else None,
        "against_versions": against,
        "confusion": confusion,
        "mean_confidence": {"production": _rounded(totals["production_confidence"]),
                            "candidate": _rounded(totals["candidate_confidence"])},
        "corrected": {"count": labelled,
                      "production_accuracy": round(totals["production_right"] / labelled, 5) if labelled else None,
                      "candidate_accuracy": round(totals["candidate_right"] / labelled, 5) if labelled else None},
        "answered": {"count": answered["count"], "corrected": answered["corrected"]},
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 5)


def correction_rate(predictions) -> tuple[int, int]:
    """(predictions, corrections: a user's label that differs from the answer) of a slice of predictions."""
    rows = list(predictions.values_list("digit", "corrected_label"))
    return len(rows), sum(1 for digit, label in rows if label is not None and label != digit)


def auto_rollback_check() -> AliasChange | None:
    """Move production back to the version it replaced when, since its promotion, its correction rate is worse by
    more than `rollback_margin`; the ledger row written, or None. Called after every correction."""
    if not settings.AUTO_ROLLBACK:
        return None
    promotion = AliasChange.objects.filter(alias=Alias.Name.PRODUCTION).first()
    if (promotion is None or promotion.from_version_id in (None, promotion.to_version_id)
            or promotion.action == AliasChange.Action.AUTO_ROLLBACK
            or promotion.changed_at < timezone.now() - timedelta(hours=settings.ROLLBACK_WATCH_HOURS)):
        return None
    before = AliasChange.objects.filter(alias=Alias.Name.PRODUCTION, pk__lt=promotion.pk).first()
    if before is not None and (before.from_version_id, before.to_version_id) == (
            promotion.to_version_id, promotion.from_version_id):
        return None  # it undoes the move before it: an admin's rollback, not a promotion to watch
    figures = _rollback_figures(promotion)
    if figures is None:
        return None
    with transaction.atomic():
        production = Alias.objects.select_for_update().filter(name=Alias.Name.PRODUCTION).first()
        if production is None or production.model_version_id != promotion.to_version_id:
            return None  # someone moved it meanwhile (another correction's check, an admin)
        if AliasChange.objects.filter(alias=Alias.Name.PRODUCTION).values_list("pk", flat=True).first() != promotion.pk:
            return None
        production.model_version_id = promotion.from_version_id
        production.save(update_fields=["model_version", "updated_at"])
        change = AliasChange.objects.create(
            alias=Alias.Name.PRODUCTION, action=AliasChange.Action.AUTO_ROLLBACK, from_version_id=promotion.to_version_id,
            to_version_id=promotion.from_version_id, actor=SYSTEM, details=figures,
            reason=(f"correction rate {figures['production']['rate']:.1%} of v{promotion.to_version_id} over its last "
                    f"{figures['production']['predictions']} predictions against {figures['former']['rate']:.1%} of "
                    f"v{promotion.from_version_id}: more than {figures['margin']:.1%} worse"))
        events.emit("alias.moved", services.alias_event(change))
        events.emit("rollback.auto", {**services.alias_event(change), "figures": figures})
    logger.warning("auto-rollback: production v%s -> v%s %s", promotion.to_version_id, promotion.from_version_id, figures)
    return change


def _rollback_figures(promotion: AliasChange) -> dict | None:
    """The correction rates that call for a rollback of `promotion`, or None while they do not."""
    window = settings.ROLLBACK_WINDOW
    live = Prediction.objects.filter(run__isnull=True)  # a scored file's answers are nobody's to correct
    since = live.filter(model_version_id=promotion.to_version_id, created_at__gte=promotion.changed_at)
    count, corrections = correction_rate(since.order_by("-id")[:window])
    if count < settings.ROLLBACK_MIN_PREDICTIONS:
        return None
    before = live.filter(model_version_id=promotion.from_version_id, created_at__lt=promotion.changed_at)
    former_count, former_corrections = correction_rate(before.order_by("-id")[:window])
    rate = corrections / count
    # A former version with too few predictions to say anything counts as never corrected.
    former_rate = former_corrections / former_count if former_count >= settings.ROLLBACK_MIN_PREDICTIONS else 0.0
    if rate <= former_rate + settings.ROLLBACK_MARGIN:
        return None
    return {"production": {"version": promotion.to_version_id, "predictions": count, "corrections": corrections,
                           "rate": round(rate, 5)},
            "former": {"version": promotion.from_version_id, "predictions": former_count,
                       "corrections": former_corrections, "rate": round(former_rate, 5)},
            "margin": settings.ROLLBACK_MARGIN, "window": window, "promotion": promotion.pk}
