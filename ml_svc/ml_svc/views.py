"""ml_svc's API: predictions and the start of training/collection jobs."""

from __future__ import annotations

import base64

from django.conf import settings
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from kit.errors import AppError
from kit.validation import validated
from ml_svc import inference, jobs, peers
from ml_svc.architectures import (
    ARCHITECTURES,
    FINE_TUNE_HYPERPARAMETERS,
    get_architecture,
    validate_hyperparameters,
    validate_values,
)


def queue_metrics():
    """Jobs waiting in the task queue, for Prometheus."""
    from django_tasks_db.models import DBTaskResult
    from prometheus_client.core import GaugeMetricFamily

    depth = GaugeMetricFamily("ml_queue_depth", "Jobs queued and not yet started")
    depth.add_metric([], DBTaskResult.objects.ready().count())
    yield depth


# The prediction routes are served outside Django (wsgi.py, kit/hotpath.py): these are their only views.

def hot_predict(request) -> tuple[int, dict]:
    return 200, inference.predict(request.body)


def hot_predict_batch(request) -> tuple[int, dict]:
    return 200, inference.predict_batch(request.body)


@api_view(["GET"])
def compare(request):
    """Two versions on the held-out digits of the baseline's training data."""
    try:
        baseline_id, candidate_id = int(request.GET["baseline"]), int(request.GET["candidate"])
    except (KeyError, ValueError):
        raise AppError("invalid", "baseline and candidate must be model version ids") from None
    return Response(inference.compare_versions(baseline_id, candidate_id))


@api_view(["POST"])
def canonicalize(request):
    """The canonical 28x28 image of an upload (base64 bytes), or the reason it is refused."""
    image = inference.canonical_input(request.data)
    return Response({"image": base64.b64encode(image.tobytes()).decode()})


@api_view(["GET"])
def architectures(request):
    return Response({
        "architectures": [cls.describe() for cls in ARCHITECTURES.values()],
        "default": settings.DEFAULT_ARCHITECTURE,
        "fine_tune": [h.describe() for h in FINE_TUNE_HYPERPARAMETERS],
    })


class TrainInput(serializers.Serializer):
    dataset_id = serializers.IntegerField(min_value=1)
    architecture = serializers.CharField(max_length=50, required=False, allow_null=True, default=None)
    hyperparameters = serializers.DictField(required=False, default=dict)
    created_by = serializers.CharField(max_length=150)


class CollectInput(serializers.Serializer):
    source = serializers.CharField(max_length=100)
    split = serializers.CharField(max_length=10, required=False, default="train")
    batch_size = serializers.IntegerField(min_value=1, max_value=10000, required=False, default=1000)
    max_samples = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    validation_fraction = serializers.FloatField(min_value=0.02, max_value=0.5, required=False, default=0.1)
    split_seed = serializers.IntegerField(min_value=0, required=False, default=0)
    created_by = serializers.CharField(max_length=150)


def _enqueue(run: dict, job) -> Response:
    try:
        job.enqueue(run["id"])
    except Exception as exc:  # the queue's database failed: the run must not stay queued forever
        peers.storage().update_run(run["id"], status="failed", error=f"could not queue the job: {exc}")
        raise AppError("queue_unavailable", "The job queue is unavailable.", status=503) from None
    return Response(run, status=status.HTTP_202_ACCEPTED)


@api_view(["POST"])
def start_training(request):
    params = validated(TrainInput, request.data)
    architecture = get_architecture(params["architecture"] or settings.DEFAULT_ARCHITECTURE)
    hp = validate_hyperparameters(architecture, params["hyperparameters"])
    # The run keeps what was asked for (checked); the worker fills in the defaults, and a time-budgeted training
    # chooses what was left open (its version records every value).
    asked = {name: hp[name] for name in params["hyperparameters"]}
    peers.storage().get_dataset(params["dataset_id"])  # 404 if it does not exist
    run = peers.storage().create_run(
        kind="train",
        params={"dataset_id": params["dataset_id"], "architecture": architecture.name, "hyperparameters": asked},
        created_by=params["created_by"],
    )
    return _enqueue(run, jobs.train_model)


class FineTuneInput(serializers.Serializer):
    base_model_id = serializers.IntegerField(min_value=1)
    hyperparameters = serializers.DictField(required=False, default=dict)
    created_by = serializers.CharField(max_length=150)


@api_view(["POST"])
def start_fine_tune(request):
    params = validated(FineTuneInput, request.data)
    hp = validate_values(FINE_TUNE_HYPERPARAMETERS, params["hyperparameters"])
    base = peers.storage().get_model_version(params["base_model_id"])  # 404 if it does not exist
    if peers.storage().list_samples(status="accepted", page_size=1)["count"] == 0:
        raise AppError("no_user_samples", "There are no accepted user samples to fine-tune on: review some first.")
    run = peers.storage().create_run(
        kind="fine-tune", params={"base_model_id": base["id"], "hyperparameters": hp}, created_by=params["created_by"]
    )
    return _enqueue(run, jobs.fine_tune_model)


@api_view(["POST"])
def start_collect(request):
    params = validated(CollectInput, request.data)
    sources = {s["source"]: s for s in peers.collector().sources()["sources"]}
    if params["source"] not in sources:
        raise AppError(
            "unknown_source", f"unknown source {params['source']!r}; known: {', '.join(sorted(sources))}",
            status=404, details={"source": params["source"]},
        )
    splits = sources[params["source"]]["splits"]
    if params["split"] not in splits:
        raise AppError(
            "unknown_split", f"{params['source']} has splits {', '.join(splits) or '(none available)'}",
            details={"split": params["split"]},
        )
    # The one source that can be empty: say so now rather than queue a run that can only fail.
    if params["source"] == "user" and not peers.collector().source("user")["splits"][params["split"]]["count"]:
        raise AppError("empty_source", "There are no accepted user samples to collect yet: accept some in the "
                       "review queue first.", status=409, details={"source": "user"})
    created_by = params.pop("created_by")
    run = peers.storage().create_run(kind="collect", params=params, created_by=created_by)
    return _enqueue(run, jobs.collect_dataset)
