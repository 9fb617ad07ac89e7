"""storage_svc's internal API: parse input, call a service or selector, render."""

from __future__ import annotations

import json

from django.db.models import Q
from django.http import HttpResponse
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from kit import imagepack
from kit.errors import AppError
from kit.validation import ascii_int, validated
from storage_svc.registry import drift, events, rollout, selectors, services
from storage_svc.registry.blobs import read_blob_file
from storage_svc.registry.models import Alias, AliasChange, Blob, Report, WebhookDelivery
from storage_svc.registry.serializers import (
    AliasChangeSerializer,
    AliasSerializer,
    AliasSetInput,
    CanaryInput,
    ClaimInput,
    DatasetSerializer,
    DeliveryResultInput,
    EvaluationCreateInput,
    EvaluationSerializer,
    EventInput,
    FeedbackInput,
    ModelVersionCreateInput,
    ModelVersionSerializer,
    PredictionSerializer,
    RunCreateInput,
    RunSerializer,
    RunUpdateInput,
    SampleCreateInput,
    SampleReviewInput,
    SamplesBulkInput,
    SampleSerializer,
    WebhookDeliverySerializer,
    WebhookInput,
    WebhookSerializer,
)


class RawBodyParser(BaseParser):
    """Accepts any binary body; the view reads `request.body` itself."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def __init__(self):
        from django.conf import settings

        self.page_size = settings.PAGE_SIZE


def _paginated(request, queryset, serializer_class):
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


# Blobs

@api_view(["PUT"])
@parser_classes([RawBodyParser])
def blob_put(request):
    blob = services.blob_store(data=request.data)
    return Response({"sha256": blob.sha256, "size": blob.size}, status=status.HTTP_201_CREATED)


@api_view(["GET", "DELETE"])
def blob_detail(request, sha256: str):
    if request.method == "DELETE":
        deleted = services.blob_delete_unreferenced(sha256=sha256)
        return Response({"deleted": deleted})
    if not Blob.objects.filter(pk=sha256).exists():
        raise AppError("not_found", f"blob {sha256} is not stored", status=404)
    return HttpResponse(read_blob_file(sha256), content_type="application/octet-stream")


# Datasets

@api_view(["GET", "POST"])
@parser_classes([RawBodyParser])
def datasets(request):
    if request.method == "GET":
        return _paginated(request, selectors.datasets_list(params=request.query_params), DatasetSerializer)
    if request.content_type != imagepack.CONTENT_TYPE:
        raise AppError("unsupported_media_type", f"send the pixels as {imagepack.CONTENT_TYPE}", status=415)
    params = request.query_params
    parents = [ascii_int(p, field="parents") for p in params.get("parents", "").split(",") if p.strip()]
    try:
        meta = json.loads(params.get("meta", "{}"))
    except ValueError:
        raise AppError("invalid", "meta must be a JSON object", details={"meta": "not JSON"}) from None
    if not isinstance(meta, dict):
        raise AppError("invalid", "meta must be a JSON object", details={"meta": "not an object"})
    dataset = services.dataset_create(
        meta=meta,
        data=request.data,
        name=params.get("name", ""),
        source=params.get("source", ""),
        split=params.get("split", "train"),
        created_by=params.get("created_by", request.caller),
        parent_ids=parents,
    )
    return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


@api_view(["GET"])
def dataset_detail(request, dataset_id: int):
    return Response(DatasetSerializer(selectors.dataset_get(dataset_id=dataset_id)).data)


@api_view(["GET"])
def dataset_data(request, dataset_id: int):
    dataset = selectors.dataset_get(dataset_id=dataset_id)
    return HttpResponse(read_blob_file(dataset.blob_id), content_type=imagepack.CONTENT_TYPE)


# Runs

@api_view(["GET", "POST"])
def runs(request):
    if request.method == "GET":
        services.runs_expire_stale_now_and_then()  # a run nobody works on is reported as failed, with the reason
        return _paginated(request, selectors.runs_list(params=request.query_params), RunSerializer)
    data = validated(RunCreateInput, request.data)
    run = services.run_create(**data)
    return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


@api_view(["GET", "PATCH"])
def run_detail(request, run_id: int):
    if request.method == "GET":
        services.runs_expire_stale_now_and_then()
        return Response(RunSerializer(selectors.run_get(run_id=run_id)).data)
    changes = validated(RunUpdateInput, request.data)
    changes.pop("heartbeat", None)
    return Response(RunSerializer(services.run_update(run_id=run_id, changes=changes)).data)


# Model versions and aliases

@api_view(["GET", "POST"])
def model_versions(request):
    if request.method == "GET":
        return _paginated(
            request, selectors.model_versions_list(params=request.query_params), ModelVersionSerializer
        )
    version = services.model_version_create(**validated(ModelVersionCreateInput, request.data))
    version = selectors.model_version_get(version_id=version.pk)
    return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class NoteInput(serializers.Serializer):
    note = serializers.CharField(allow_blank=True, max_length=5000)


@api_view(["GET", "PATCH"])
def model_version_detail(request, version_id: int):
    if request.method == "PATCH":
        services.model_version_annotate(version_id=version_id, **validated(NoteInput, request.data))
    return Response(ModelVersionSerializer(selectors.model_version_get(version_id=version_id)).data)


@api_view(["GET", "POST"])
def model_evaluations(request, version_id: int):
    """GET: a version's evaluations on whole datasets, newest first. POST: record one."""
    if request.method == "POST":
        evaluation = services.evaluation_create(version_id=version_id, **validated(EvaluationCreateInput, request.data))
        return Response(EvaluationSerializer(evaluation).data, status=status.HTTP_201_CREATED)
    return _paginated(request, selectors.evaluations_of(version_id=version_id), EvaluationSerializer)


class ReportInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["pdf", "html"])
    input_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$")


@api_view(["GET", "PUT"])
@parser_classes([RawBodyParser])
def model_report(request, version_id: int):
    """GET ?kind=&input_sha256=: the stored report for exactly these inputs (404 if none). PUT: store one."""
    params = validated(ReportInput, dict(request.query_params.items()))
    if request.method == "PUT":
        services.report_store(version_id=version_id, data=request.data, **params)
    report = Report.objects.filter(model_version_id=version_id, **params).first()
    if report is None:
        raise AppError("not_found", "no report for these inputs yet", status=404)
    return HttpResponse(read_blob_file(report.blob_id), content_type="application/octet-stream")


@api_view(["GET", "POST"])
def alias_detail(request, name: str):
    if request.method == "POST":
        services.alias_set(name=name, **validated(AliasSetInput, request.data))
    return Response(AliasSerializer(selectors.alias_get(name=name)).data)


def _rollout_state() -> dict:
    state = rollout.state()
    return {"production": ModelVersionSerializer(state["production"]).data if state["production"] else None,
            "candidate": ModelVersionSerializer(state["candidate"]).data if state["candidate"] else None,
            "canary_share": state["canary_share"]}


@api_view(["GET"])
def rollout_state(request):
    """What serves: production, the candidate and its canary share (ml_svc reads this every alias_refresh_s)."""
    return Response(_rollout_state())


@api_view(["POST"])
def canary(request):
    """Route a share (0-0.5) of users to the candidate; the change is in the ledger."""
    rollout.canary_set(**validated(CanaryInput, request.data))
    return Response(_rollout_state())


@api_view(["GET"])
def model_shadow(request, version_id: int):
    return Response(rollout.shadow_stats(version_id=version_id))


@api_view(["GET"])
def alias_ledger(request):
    changes = AliasChange.objects.all()
    action = request.query_params.get("action")
    if action:
        if action not in AliasChange.Action.values:
            raise AppError("invalid", f"action must be one of {', '.join(AliasChange.Action.values)}",
                           details={"action": "unknown"})
        changes = changes.filter(action=action)
    alias = request.query_params.get("alias")
    if alias:
        if alias not in Alias.Name.values:
            raise AppError("invalid", f"alias must be one of {', '.join(Alias.Name.values)}", details={"alias": "unknown"})
        changes = changes.filter(alias=alias)
    version = request.query_params.get("version")
    if version:
        version = ascii_int(version, field="version")
        changes = changes.filter(Q(to_version_id=version) | Q(from_version_id=version))
    return _paginated(request, changes, AliasChangeSerializer)


# Predictions

@api_view(["GET"])
def predictions(request):
    return _paginated(request, selectors.predictions_list(params=request.query_params), PredictionSerializer)



@api_view(["GET"])
def prediction_stats(request):
    days = ascii_int(request.query_params.get("days", "14"), field="days", maximum=365)
    return Response({"days": days, "series": selectors.prediction_stats(days=days)})


@api_view(["POST"])
def predictions_bulk(request):
    """Record answered predictions: {"predictions": [...]} -> their ids and times, in order."""
    items = request.data.get("predictions") if isinstance(request.data, dict) else None
    created = services.predictions_create_bulk(items=services.prediction_rows(items))
    return Response({"ids": [pk for pk, _ in created], "created_at": [at for _, at in created]},
                    status=status.HTTP_201_CREATED)


@api_view(["GET"])
def prediction_detail(request, prediction_id: int):
    return Response(PredictionSerializer(selectors.prediction_get(prediction_id=prediction_id)).data)


@api_view(["POST"])
def prediction_feedback(request, prediction_id: int):
    data = validated(FeedbackInput, request.data)
    sample = services.prediction_feedback(prediction_id=prediction_id, **data)
    rollout.auto_rollback_check()  # a correction is what can make production's live record worse
    return Response(SampleSerializer(sample).data, status=status.HTTP_201_CREATED)


# User samples

@api_view(["GET", "POST"])
def samples(request):
    if request.method == "GET":
        return _paginated(request, selectors.samples_list(params=request.query_params), SampleSerializer)
    sample = services.sample_create(**validated(SampleCreateInput, request.data))
    return Response(SampleSerializer(sample).data, status=status.HTTP_201_CREATED)


@api_view(["POST"])
def samples_bulk(request):
    created = services.samples_bulk_create(**validated(SamplesBulkInput, request.data))
    return Response({"created": len(created), "samples": SampleSerializer(created, many=True).data},
                    status=status.HTTP_201_CREATED)


@api_view(["GET"])
def model_errors(request, version_id: int):
    """The version's corrected live predictions as a confusion matrix, and one cell's (`true`, `predicted`)."""
    query = request.query_params
    cell = {name: ascii_int(query[name], field=name, minimum=0, maximum=9) if query.get(name) not in (None, "") else None
            for name in ("true", "predicted")}
    limit = ascii_int(query.get("limit", str(selectors.ERROR_ITEMS_LIMIT)), field="limit", minimum=1,
                      maximum=selectors.ERROR_ITEMS_LIMIT)
    return Response(selectors.live_errors(version_id=version_id, limit=limit, **cell))


@api_view(["POST"])
def sample_review(request, sample_id: int):
    sample = services.sample_review(sample_id=sample_id, **validated(SampleReviewInput, request.data))
    return Response(SampleSerializer(sample).data)


@api_view(["GET"])
def samples_export(request):
    wanted = request.query_params.get("status", "accepted")
    if wanted not in ("pending", "accepted", "rejected"):
        raise AppError("invalid", "status must be pending, accepted or rejected", details={"status": wanted})
    return HttpResponse(services.samples_pack(status=wanted), content_type=imagepack.CONTENT_TYPE)


# Drift, events and webhooks

@api_view(["GET"])
def model_drift(request, version_id: int):
    days = ascii_int(request.query_params.get("days", "7"), field="days", minimum=1, maximum=31)
    return Response(drift.version_drift(version_id=version_id, days=days))


@api_view(["GET"])
def production_drift(request):
    """Today's drift of the production version, or null (a significant one is a drift.alert, once a day)."""
    return Response({"drift": drift.production_today()})


@api_view(["POST"])
def event_create(request):
    """An event another service witnessed (the gateway's refused promotions) for the webhooks subscribed to it."""
    data = validated(EventInput, request.data)
    event = events.emit(data["type"], data["data"])
    return Response({"id": event.id if event else None}, status=status.HTTP_201_CREATED)


@api_view(["GET", "POST"])
def webhooks(request):
    """GET: the registered webhooks (never their secrets). POST: register one; its secret is in this answer only."""
    if request.method == "POST":
        hook = events.webhook_create(**validated(WebhookInput, request.data))
        return Response({**WebhookSerializer(hook).data, "secret": hook.secret}, status=status.HTTP_201_CREATED)
    return _paginated(request, selectors.webhooks_list(), WebhookSerializer)


@api_view(["DELETE"])
def webhook_detail(request, webhook_id: int):
    events.webhook_delete(webhook_id=webhook_id)
    return Response(status=status.HTTP_204_NO_CONTENT)


@api_view(["GET"])
def deliveries(request):
    return _paginated(request, selectors.deliveries_list(params=request.query_params), WebhookDeliverySerializer)


@api_view(["POST"])
def deliveries_claim(request):
    """For ml_svc's webhooks queue: due deliveries, leased, with where to send them and the secret to sign with."""
    return Response({"deliveries": events.deliveries_claim(**validated(ClaimInput, request.data))})


@api_view(["POST"])
def delivery_result(request, delivery_id: int):
    delivery = events.delivery_result(delivery_id=delivery_id, **validated(DeliveryResultInput, request.data))
    delivery = WebhookDelivery.objects.select_related("webhook", "event").get(pk=delivery.pk)
    return Response(WebhookDeliverySerializer(delivery).data)
