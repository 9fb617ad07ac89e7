"""ml_svc's API: parse a request, call inference, evaluation or services, render the answer."""

from __future__ import annotations

import base64

from django.conf import settings
from django.http import HttpResponse
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from kit.errors import AppError
from kit.validation import validated
from ml_svc import evaluation, inference, services, sweeps
from ml_svc.architectures import (
    ARCHITECTURES,
    FINE_TUNE_HYPERPARAMETERS,
)
from ml_svc.serving import model_cache


def queue_metrics():
    """Jobs waiting in the task queue, for Prometheus."""
    from django_tasks_db.models import DBTaskResult
    from prometheus_client.core import GaugeMetricFamily

    depth = GaugeMetricFamily("ml_queue_depth", "Jobs queued and not yet started")
    depth.add_metric([], DBTaskResult.objects.ready().filter(queue_name="default").count())
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
    return Response(evaluation.compare_versions(baseline_id, candidate_id))


@api_view(["GET"])
def model_onnx(request, version_id: int):
    """A version as a self-contained ONNX file: canonical 28x28 pixels (0-255) in, probabilities out."""
    return HttpResponse(model_cache().version(version_id).portable_onnx, content_type="application/octet-stream")


class ExplainInput(serializers.Serializer):
    image = serializers.CharField(max_length=2000, help_text="base64 of the canonical 28x28 image (784 bytes)")
    model_id = serializers.IntegerField(min_value=1)
    target = serializers.IntegerField(min_value=0, max_value=9, required=False, allow_null=True, default=None)


@api_view(["POST"])
def explain(request):
    """Why version `model_id` answers what it does for a canonical image: integrated gradients of the class
    `target` (default: its answer), and an overlay PNG (explain.py)."""
    from ml_svc import explain as explanations

    data = validated(ExplainInput, request.data)
    return Response(explanations.explain(image_b64=data["image"], model_id=data["model_id"], target=data["target"]))


class ErrorsInput(serializers.Serializer):
    dataset_id = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    part = serializers.ChoiceField(choices=["held-out", "all"], required=False, default="held-out")
    true = serializers.IntegerField(min_value=0, max_value=9, required=False, allow_null=True, default=None)
    predicted = serializers.IntegerField(min_value=0, max_value=9, required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(min_value=1, max_value=48, required=False, default=48)


@api_view(["POST"])
def model_errors(request, version_id: int):
    """The version's confusion matrix on a dataset (default: its held-out digits) and one cell's digits."""
    from ml_svc import errors

    return Response(errors.confusion_cell(version_id=version_id, **validated(ErrorsInput, request.data)))


class OverlaysInput(serializers.Serializer):
    model_id = serializers.IntegerField(min_value=1)
    images = serializers.ListField(child=serializers.CharField(max_length=2000), min_length=1, max_length=48)
    target = serializers.IntegerField(min_value=0, max_value=9, required=False, allow_null=True, default=None)


@api_view(["POST"])
def overlays(request):
    """Why a version answers what it does for each of several canonical images (overlay PNGs)."""
    from ml_svc import errors

    return Response({"overlays": errors.overlays(**validated(OverlaysInput, request.data))})


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
    upload = serializers.RegexField(r"^[0-9a-f]{32}$", required=False, allow_null=True, default=None)
    created_by = serializers.CharField(max_length=150)


class SweepInput(serializers.Serializer):
    dataset_id = serializers.IntegerField(min_value=1)
    architecture = serializers.CharField(max_length=50, required=False, allow_null=True, default=None)
    search_space = serializers.DictField()
    trials = serializers.IntegerField(min_value=1, max_value=200)
    max_parallel = serializers.IntegerField(min_value=1, max_value=32, required=False, default=2)
    time_budget_s = serializers.IntegerField(min_value=0, max_value=7 * 86400, required=False, default=0)
    hyperparameters = serializers.DictField(required=False, default=dict)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, default=0)
    created_by = serializers.CharField(max_length=150)


class InferInput(serializers.Serializer):
    upload = serializers.RegexField(r"^[0-9a-f]{32}$")
    model_id = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    created_by = serializers.CharField(max_length=150)


class FineTuneInput(serializers.Serializer):
    base_model_id = serializers.IntegerField(min_value=1)
    hyperparameters = serializers.DictField(required=False, default=dict)
    created_by = serializers.CharField(max_length=150)


class EvaluateInput(serializers.Serializer):
    model_id = serializers.IntegerField(min_value=1)
    dataset_id = serializers.IntegerField(min_value=1)
    created_by = serializers.CharField(max_length=150)


def job_start(start, form: type[serializers.Serializer]):
    """A view that checks the request against `form` and starts the job: 202 with its queued run."""

    @api_view(["POST"])
    def view(request):
        return Response(start(**validated(form, request.data)), status=status.HTTP_202_ACCEPTED)

    return view


start_training = job_start(services.start_training, TrainInput)
start_fine_tune = job_start(services.start_fine_tune, FineTuneInput)
start_evaluation = job_start(services.start_evaluation, EvaluateInput)
start_collect = job_start(services.start_collect, CollectInput)
start_infer = job_start(services.start_infer, InferInput)
start_sweep = job_start(services.start_sweep, SweepInput)


@api_view(["GET"])
def sweep_detail(request, run_id: int):
    """A sweep's trials and plotly figures of its search (its study is ml_svc's)."""
    return Response(sweeps.sweep_view(run_id))
