"""Reads from the domain database; they never write (a view that needs a write first calls services)."""

from __future__ import annotations

import base64
from datetime import timedelta

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from kit.errors import AppError
from kit.validation import ascii_int, calendar_day, clean_text
from storage_svc.registry.models import (
    Alias,
    Dataset,
    Evaluation,
    ModelVersion,
    Prediction,
    Run,
    Sample,
    Webhook,
    WebhookDelivery,
)


def _int_filter(value: str | None, name: str) -> int | None:
    return None if value in (None, "") else ascii_int(value, field=name, minimum=0)


def _one(queryset: QuerySet, missing: str, **where):
    """The one row matching `where`, or a 404 saying `missing`."""
    found = queryset.filter(**where).first()
    if found is None:
        raise AppError("not_found", missing, status=404)
    return found


def _checked(params) -> dict:
    """Query filters as text a database can compare: a NUL or other control character is a 400, not a 500."""
    return {key: clean_text(value, field=key) for key, value in params.items()}


def runs_list(*, params) -> QuerySet[Run]:
    params = _checked(params)
    runs = Run.objects.all()
    for field in ("kind", "status", "created_by"):
        if params.get(field):
            runs = runs.filter(**{field: params[field]})
    parent = _int_filter(params.get("parent_run"), "parent_run")
    if parent is not None:
        runs = runs.filter(parent_run_id=parent)
    return runs


def run_get(*, run_id: int) -> Run:
    return _one(Run.objects.all(), f"run {run_id} does not exist", pk=run_id)


def datasets_list(*, params) -> QuerySet[Dataset]:
    params = _checked(params)
    datasets = Dataset.objects.prefetch_related("parents")
    for field in ("source", "split", "sha256"):
        if params.get(field):
            datasets = datasets.filter(**{field: params[field]})
    return datasets


def dataset_get(*, dataset_id: int) -> Dataset:
    return _one(Dataset.objects.select_related("blob"), f"dataset {dataset_id} does not exist", pk=dataset_id)


def model_versions_list(*, params) -> QuerySet[ModelVersion]:
    params = _checked(params)
    versions = ModelVersion.objects.prefetch_related("datasets", "aliases")
    if params.get("architecture"):
        versions = versions.filter(architecture=params["architecture"])
    return versions


def model_version_get(*, version_id: int) -> ModelVersion:
    return _one(ModelVersion.objects.prefetch_related("datasets", "aliases"),
                f"model version {version_id} does not exist", pk=version_id)


def evaluations_of(*, version_id: int) -> QuerySet[Evaluation]:
    _one(ModelVersion.objects.all(), f"model version {version_id} does not exist", pk=version_id)
    return Evaluation.objects.filter(model_version_id=version_id)


def alias_get(*, name: str) -> Alias:
    return _one(Alias.objects.select_related("model_version", "model_version__weights"),
                f"alias {name} points nowhere yet", name=name)


def predictions_list(*, params) -> QuerySet[Prediction]:
    params = _checked(params)
    predictions = Prediction.objects.select_related("model_version")
    if params.get("user"):
        predictions = predictions.filter(user=params["user"])
    if params.get("corrected") in ("true", "false"):
        predictions = predictions.filter(corrected_label__isnull=params["corrected"] == "false")
    digit = _int_filter(params.get("digit"), "digit")
    if digit is not None:
        predictions = predictions.filter(digit=digit)
    model = _int_filter(params.get("model"), "model")
    if model is not None:
        predictions = predictions.filter(model_version_id=model)
    run = _int_filter(params.get("run"), "run")
    if run is not None:
        predictions = predictions.filter(run_id=run)
    if params.get("live") == "true":  # drawn or sent one by one, not scored from a file
        predictions = predictions.filter(run__isnull=True)
    for bound, lookup in (("since", "created_at__date__gte"), ("until", "created_at__date__lte")):
        if params.get(bound):
            predictions = predictions.filter(**{lookup: calendar_day(params[bound], field=bound)})
    order = params.get("order") or "newest"
    if order not in PREDICTION_ORDERS:
        raise AppError("invalid", f"order must be one of {', '.join(PREDICTION_ORDERS)}", details={"order": order})
    if order == "uncertainty":  # the answers the model was least sure of first
        predictions = predictions.order_by("confidence", "-id")
    return predictions


PREDICTION_ORDERS = ("newest", "uncertainty")
ERROR_ITEMS_LIMIT = 48


def live_errors(*, version_id: int, true: int | None, predicted: int | None, limit: int) -> dict:
    """A version's live predictions (not scored from a file) that people corrected, as a confusion matrix (rows: the corrected label,
    columns: its answer), and those of one cell, the most confident first."""
    model_version_get(version_id=version_id)
    corrected = Prediction.objects.filter(model_version_id=version_id, corrected_label__isnull=False, run__isnull=True)
    matrix = [[0] * 10 for _ in range(10)]
    for row in corrected.values("corrected_label", "digit").annotate(count=Count("id")).order_by():
        matrix[row["corrected_label"]][row["digit"]] = row["count"]
    answer = {"count": sum(map(sum, matrix)), "matrix": matrix, "cell": None}
    if true is not None and predicted is not None:
        cell = corrected.filter(corrected_label=true, digit=predicted)
        answer["cell"] = {"true": true, "predicted": predicted, "count": matrix[true][predicted], "items": [
            {"prediction": p.id, "image": base64.b64encode(bytes(p.image)).decode(), "confidence": round(p.confidence, 4)}
            for p in cell.order_by("-confidence", "-id")[:limit]]}
    return answer


def prediction_stats(*, days: int) -> list[dict]:
    """Per day and model version: count, digit mix, mean confidence, corrections."""
    since = timezone.now().date() - timedelta(days=days - 1)
    rows = (
        Prediction.objects.filter(created_at__date__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "model_version_id", "digit")
        .annotate(count=Count("id"), confidence_sum=Sum("confidence"), corrected=Count("corrected_label"))
        .order_by("day", "model_version_id", "digit")
    )
    grouped: dict[tuple, dict] = {}
    for row in rows:
        key = (row["day"].isoformat(), row["model_version_id"])
        entry = grouped.setdefault(key, {"day": key[0], "model_version_id": key[1], "count": 0,
                                          "digits": [0] * 10, "confidence_sum": 0.0, "corrected": 0})
        entry["count"] += row["count"]
        entry["digits"][row["digit"]] += row["count"]
        entry["confidence_sum"] += row["confidence_sum"] or 0.0
        entry["corrected"] += row["corrected"]
    return [
        {"day": e["day"], "model_version_id": e["model_version_id"], "count": e["count"], "digits": e["digits"],
         "mean_confidence": round(e["confidence_sum"] / e["count"], 4), "correction_rate": round(e["corrected"] / e["count"], 4)}
        for e in grouped.values()
    ]


def prediction_get(*, prediction_id: int) -> Prediction:
    return _one(Prediction.objects.all(), f"prediction {prediction_id} does not exist", pk=prediction_id)


SAMPLE_ORDERS = ("newest", "uncertainty")


def samples_list(*, params) -> QuerySet[Sample]:
    """Samples, newest first; `order=uncertainty`: those whose prediction the model was least sure of first (its
    confidence, lowest first), then those without one (drawn and labelled by a user), newest first."""
    params = _checked(params)
    samples = Sample.objects.annotate(confidence=F("prediction__confidence"))
    for field in ("status", "user"):
        if params.get(field):
            samples = samples.filter(**{field: params[field]})
    order = params.get("order") or "newest"
    if order not in SAMPLE_ORDERS:
        raise AppError("invalid", f"order must be one of {', '.join(SAMPLE_ORDERS)}", details={"order": order})
    if order == "uncertainty":
        samples = samples.order_by(F("confidence").asc(nulls_last=True), "-id")
    return samples


def webhooks_list() -> QuerySet[Webhook]:
    return Webhook.objects.all()


def deliveries_list(*, params) -> QuerySet[WebhookDelivery]:
    params = _checked(params)
    deliveries = WebhookDelivery.objects.select_related("webhook", "event")
    webhook = _int_filter(params.get("webhook"), "webhook")
    if webhook is not None:
        deliveries = deliveries.filter(webhook_id=webhook)
    if params.get("status"):
        if params["status"] not in WebhookDelivery.Status.values:
            raise AppError("invalid", f"status must be one of {', '.join(WebhookDelivery.Status.values)}",
                           details={"status": "unknown"})
        deliveries = deliveries.filter(status=params["status"])
    return deliveries
