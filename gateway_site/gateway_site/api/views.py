"""The gateway's REST API (DESIGN §8): parse input, call a scenario, render JSON."""

from __future__ import annotations

import json

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view, parser_classes, permission_classes, renderer_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from gateway_site.accounts.lockout import locked_out
from gateway_site.accounts.models import audit
from gateway_site.accounts.roles import RoleRequired, require_role
from gateway_site.api.idempotency import idempotent
from gateway_site.api.schema import Binary, answers
from gateway_site.reports.data import report_inputs
from gateway_site.reports.services import model_report as model_report_bytes
from gateway_site.scenarios import downloads, errors, events, rollout, selectors, services
from kit.contracts import collector, gateway, ml, storage
from kit.errors import AppError
from kit.validation import ascii_int, validated
from kit.webhooks import EVENT_TYPES

Viewer, Engineer, Admin = RoleRequired("viewer"), RoleRequired("ml_engineer"), RoleRequired("admin")


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=200)


@answers(POST=gateway.Token, DELETE=(204, None))
@extend_schema(request=TokenInput)
@api_view(["POST", "DELETE"])
@permission_classes([AllowAny])
def token_create(request):
    """POST: a token for good credentials. DELETE (with the token): revoke it."""
    if request.method == "DELETE":
        if not request.user.is_authenticated or request.auth is None:
            raise AppError("not_authenticated", "Send the token to revoke in the Authorization header.", status=401)
        request.auth.delete()  # remembered token checks forget it (accounts.apps)
        audit(actor=request.user.get_username(), action="token.revoke")
        return Response(status=status.HTTP_204_NO_CONTENT)
    data = validated(TokenInput, request.data)
    user = authenticate(request, username=data["username"], password=data["password"])
    if user is None:
        if getattr(request, "axes_locked_out", False):
            return locked_out(request)
        raise AppError("invalid_credentials", "Wrong username or password.", status=401)
    # A login like the pages' (no session, though): django-axes resets this user's failure count, and
    # last_login moves.
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    token, _ = Token.objects.get_or_create(user=user)
    return Response({"token": token.key})


@answers(GET=gateway.Health)
@api_view(["GET"])
@permission_classes([AllowAny])
def health(request):
    services_status = services.services_health()
    ok = all(s["status"] == "ok" for s in services_status.values())
    return Response({"status": "ok" if ok else "degraded", "services": services_status})


class PredictionInput(serializers.Serializer):
    """One image: a PNG or JPEG as base64 (a data URL is fine), or 28x28 pixels 0-255; or multipart `image`."""

    image_base64 = serializers.CharField(required=False)
    pixels = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()), required=False)
    model_id = serializers.IntegerField(required=False, help_text="a version to ask instead of production")
    explain = serializers.BooleanField(required=False, help_text="also answer why: `explanation` (integrated gradients)")


class BatchInput(serializers.Serializer):
    images = PredictionInput(many=True, help_text="1 to 256 images")
    model_id = serializers.IntegerField(required=False)


@answers(GET=gateway.PredictionPage, POST=(201, gateway.PredictionAnswer))
@extend_schema(methods=["POST"], request=PredictionInput)
@extend_schema(methods=["GET"], operation_id="predictions_list")
@api_view(["GET", "POST"])
@permission_classes([Viewer])
def predictions(request):
    if request.method == "GET":
        return Response(selectors.predictions_for(request.user, request.query_params))
    raw = None
    if request.content_type and request.content_type.startswith("multipart/"):
        upload = request.FILES.get("image")
        if upload is None:
            raise AppError("invalid", "Attach the image as the multipart field `image`.", details={"image": "required"})
        services.check_image_size(upload.size)
        raw = upload.read()
        payload = {}
    else:
        payload = request.data
        if not isinstance(payload, dict):
            raise AppError("invalid", "The body must be a JSON object.")
    result = services.prediction_create(username=request.user.get_username(), payload=dict(payload), raw_image=raw)
    return Response(result, status=status.HTTP_201_CREATED)


@answers(POST=(201, gateway.BatchPredictionAnswer))
@extend_schema(request=BatchInput)
@api_view(["POST"])
@permission_classes([Viewer])
def predictions_batch(request):
    result = services.predictions_create_batch(username=request.user.get_username(), payload=request.data)
    return Response(result, status=status.HTTP_201_CREATED)


@answers(GET=ml.Explanation)
@api_view(["GET"])
@permission_classes([Viewer])
def prediction_explanation(request, prediction_id: int):
    """Why the version answered this prediction's digit: a signed 28x28 attribution of that class (integrated
    gradients over the input it saw; positive pushed towards the answer) and a PNG of it over the input. The owner's
    (engineers: any); computed on demand and remembered."""
    return Response(services.prediction_explanation(user=request.user, prediction_id=prediction_id))


class FeedbackInput(serializers.Serializer):
    label = serializers.IntegerField(min_value=0, max_value=9)


@answers(POST=(201, storage.Sample))
@extend_schema(request=FeedbackInput)
@api_view(["POST"])
@permission_classes([Viewer])
def prediction_feedback(request, prediction_id: int):
    data = validated(FeedbackInput, request.data)
    sample = services.prediction_correct(user=request.user, prediction_id=prediction_id, label=data["label"])
    return Response(sample, status=status.HTTP_201_CREATED)


class SampleUploadInput(serializers.Serializer):
    label = serializers.IntegerField(min_value=0, max_value=9)
    image_base64 = serializers.CharField(required=False)
    pixels = serializers.ListField(required=False)


@answers(GET=gateway.SamplePage, POST=(201, storage.Sample))
@extend_schema(methods=["POST"], request=SampleUploadInput)
@extend_schema(methods=["GET"], operation_id="samples_list")
@api_view(["GET", "POST"])
@permission_classes([Viewer])
def samples(request):
    """GET: the review queue (engineers). POST: a labelled drawing, pending review (viewers)."""
    if request.method == "GET":
        require_role(request.user, "ml_engineer")
        return Response(selectors.samples(request.query_params))
    if request.content_type and request.content_type.startswith("multipart/"):
        upload = request.FILES.get("image")
        data = validated(FeedbackInput, {"label": request.data.get("label")})
        if upload is None:
            raise AppError("invalid", "Attach the image as the multipart field `image`.", details={"image": "required"})
        sample = services.sample_upload(username=request.user.get_username(), payload={}, label=data["label"], raw_image=upload.read())
    else:
        data = validated(SampleUploadInput, request.data)
        label = data.pop("label")
        sample = services.sample_upload(username=request.user.get_username(), payload=data, label=label)
    return Response(sample, status=status.HTTP_201_CREATED)


class SamplesBatchInput(serializers.Serializer):
    label = serializers.IntegerField(min_value=0, max_value=9, help_text="the label every image is sent with")
    images = serializers.ListField(child=serializers.CharField(max_length=2000), min_length=1, max_length=100,
                                   help_text="canonical 28x28 images: base64 of 784 bytes each, as the error browser gives them")


@answers(POST=(201, storage.SamplesCreated))
@extend_schema(request=SamplesBatchInput)
@api_view(["POST"])
@permission_classes([Engineer])
def samples_batch(request):
    """Send several images to the review queue with one label, all or none (the error browser's 'send to review')."""
    created = errors.send_to_review(username=request.user.get_username(), **validated(SamplesBatchInput, request.data))
    return Response(created, status=status.HTTP_201_CREATED)


class ReviewInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["accept", "reject"])


@answers(POST=storage.Sample)
@extend_schema(request=ReviewInput)
@api_view(["POST"])
@permission_classes([Engineer])
def sample_review(request, sample_id: int):
    data = validated(ReviewInput, request.data)
    return Response(services.sample_review(username=request.user.get_username(), sample_id=sample_id, **data))


@answers(GET=collector.Sources)
@api_view(["GET"])
@permission_classes([Engineer])
def sources(request):
    return Response(selectors.sources())


@answers(GET=collector.RequestLog)
@api_view(["GET"])
@permission_classes([Engineer])
def collector_log(request):
    limit = ascii_int(request.query_params.get("limit", "100"), field="limit", maximum=500)
    return Response(selectors.collector_log(limit))


class CollectInput(serializers.Serializer):
    source = serializers.CharField(max_length=100)
    batch_size = serializers.IntegerField(min_value=1, max_value=10000, required=False, default=1000)
    max_samples = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
    split = serializers.CharField(max_length=10, required=False, default="train")


@answers(POST=(202, storage.Run))
@extend_schema(request=CollectInput)
@api_view(["POST"])
@permission_classes([Engineer])
@idempotent
def collect_and_store(request):
    data = validated(CollectInput, request.data)
    run = services.collect_start(username=request.user.get_username(), **data)
    return Response(run, status=status.HTTP_202_ACCEPTED)


class TrainInput(serializers.Serializer):
    dataset_id = serializers.IntegerField(min_value=1)
    architecture = serializers.CharField(max_length=50, required=False, default=None, help_text="default: ml_svc's")
    hyperparameters = serializers.DictField(required=False, default=dict)


@answers(POST=(202, storage.Run))
@extend_schema(request=TrainInput)
@api_view(["POST"])
@permission_classes([Engineer])
@idempotent
def train_model(request):
    data = validated(TrainInput, request.data)
    run = services.training_start(username=request.user.get_username(), **data)
    return Response(run, status=status.HTTP_202_ACCEPTED)


class FineTuneInput(serializers.Serializer):
    base_model_id = serializers.IntegerField(min_value=1)
    hyperparameters = serializers.DictField(required=False, default=dict)


@answers(POST=(202, storage.Run))
@extend_schema(request=FineTuneInput)
@api_view(["POST"])
@permission_classes([Engineer])
@idempotent
def fine_tune(request):
    data = validated(FineTuneInput, request.data)
    run = services.fine_tune_start(username=request.user.get_username(), **data)
    return Response(run, status=status.HTTP_202_ACCEPTED)


@answers(GET=ml.Comparison)
@api_view(["GET"])
@permission_classes([Viewer])
def model_compare(request, version_id: int):
    other = ascii_int(request.query_params.get("with", ""), field="with")
    return Response(selectors.comparison(other, version_id))


@answers(GET=ml.Architectures)
@api_view(["GET"])
@permission_classes([Engineer])
def architectures(request):
    return Response(selectors.architectures())


@answers(GET=gateway.RunPage)
@extend_schema(operation_id="runs_list")
@api_view(["GET"])
@permission_classes([Viewer])
def runs(request):
    return Response(selectors.runs_for(request.user, request.query_params))


@answers(GET=storage.Run)
@api_view(["GET"])
@permission_classes([Viewer])
def run_detail(request, run_id: int):
    return Response(selectors.run_for(request.user, run_id))


@answers(GET={(200, "text/csv"): str})
@api_view(["GET"])
@permission_classes([Viewer])
def run_results(request, run_id: int):
    """A scoring run's answers: one row per image (file, digit, confidence, true_label, correct, error)."""
    data, name = selectors.run_results_csv(request.user, run_id)
    response = HttpResponse(data, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class UploadInput(serializers.Serializer):
    file = serializers.ListField(child=serializers.FileField(), min_length=1, max_length=2,
                                 help_text="a ZIP of folders 0/ to 9/ of PNG/JPEG images, a CSV of `label` and 784 "
                                           "pixels, or an IDX pair (both files, or zipped)")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


@answers(POST=(202, gateway.UploadRun))
@extend_schema(request={"multipart/form-data": UploadInput})
@api_view(["POST"])
@parser_classes([MultiPartParser])
@permission_classes([Engineer])
def dataset_upload(request):
    """An uploaded file, checked whole (a 4xx names what is wrong, and nothing is kept), collected as an immutable
    dataset by the run this answers with."""
    files = services.uploaded_files(request)
    name = request.POST.get("name", "")
    if len(name) > 200:
        raise AppError("invalid", "name is at most 200 characters.", details={"name": "too long"})
    run = services.dataset_upload(username=request.user.get_username(), files=files, name=name)
    return Response(run, status=status.HTTP_202_ACCEPTED)


class SweepInput(serializers.Serializer):
    dataset_id = serializers.IntegerField(min_value=1)
    architecture = serializers.CharField(max_length=50, required=False, default=None, help_text="default: ml_svc's")
    search_space = serializers.DictField(child=serializers.DictField(), help_text=(
        'each hyperparameter to search: {"low", "high", "log"?} or {"choices": [...]}, within its declared bounds '
        "(GET /api/architectures)"))
    trials = serializers.IntegerField(min_value=1, max_value=200)
    max_parallel = serializers.IntegerField(min_value=1, max_value=32, required=False, default=2)
    time_budget_s = serializers.IntegerField(min_value=0, max_value=7 * 86400, required=False, default=0,
                                             help_text="0: no limit; else no trial starts after this many seconds")
    hyperparameters = serializers.DictField(required=False, default=dict, help_text="fixed for every trial")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False, default=0)


@answers(POST=(202, storage.Run))
@extend_schema(request=SweepInput)
@api_view(["POST"])
@permission_classes([Engineer])
@idempotent
def sweep(request):
    """An Optuna search (TPE, median pruning) whose trials are trainings spread over every ML worker; the run's
    `result` holds the trials by state and the best value, parameters and version (made `candidate` at the end)."""
    run = services.sweep_start(username=request.user.get_username(), **validated(SweepInput, request.data))
    return Response(run, status=status.HTTP_202_ACCEPTED)


@answers(GET=ml.Sweep)
@api_view(["GET"])
@permission_classes([Viewer])
def sweep_detail(request, run_id: int):
    """A sweep's trials (parameters, state, held-out accuracy per epoch, duration) and plotly figures."""
    return Response(selectors.sweep_of(request.user, run_id))


class InferInput(serializers.Serializer):
    file = serializers.FileField(help_text="a ZIP of PNG/JPEG images (in folders 0/ to 9/ where their digit is "
                                           "known) or a CSV of 784 pixel columns (with `label` first, if known)")
    model_id = serializers.IntegerField(min_value=1, required=False, help_text="default: the production version")


@answers(POST=(202, gateway.UploadRun))
@extend_schema(request={"multipart/form-data": InferInput})
@api_view(["POST"])
@parser_classes([MultiPartParser])
@permission_classes([Viewer])
def infer(request):
    """Score a file of images as a run: its progress at /api/runs/{id}, its answers at /api/runs/{id}/results.csv,
    each one recorded in the caller's history."""
    files = services.uploaded_files(request)
    model = request.POST.get("model_id")
    model_id = ascii_int(model, field="model_id") if model else None
    run = services.file_scoring_start(username=request.user.get_username(), files=files, model_id=model_id)
    return Response(run, status=status.HTTP_202_ACCEPTED)


class EventStreamRenderer(BaseRenderer):
    """Lets a client that accepts only `text/event-stream` (EventSource) reach the events view; a refusal it
    gets is the usual JSON error."""

    media_type = "text/event-stream"
    format = "event-stream"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response["Content-Type"] = "application/json"  # only refusals are rendered: the stream is not
        return json.dumps(data).encode() if data is not None else b""


@answers(GET={(200, "text/event-stream"): str})
@api_view(["GET"])
@renderer_classes([JSONRenderer, EventStreamRenderer])
@permission_classes([Viewer])
def run_events(request, run_id: int):
    """The run's progress as server-sent events: `progress` at each change, `end` with the outcome, then the stream
    ends; send `Last-Event-ID` to resume."""
    last = request.headers.get("Last-Event-ID")
    last_id = ascii_int(last, field="Last-Event-ID", minimum=0, maximum=10**9) if last else None
    response = StreamingHttpResponse(events.run_events(request.user, run_id, last_id), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # the front passes each event on at once
    return response


@answers(POST=storage.Run)
@extend_schema(request=None)
@api_view(["POST"])
@permission_classes([Engineer])
def run_cancel(request, run_id: int):
    return Response(services.run_cancel(username=request.user.get_username(), run_id=run_id))


@answers(GET=gateway.DatasetPage)
@extend_schema(operation_id="datasets_list")
@api_view(["GET"])
@permission_classes([Engineer])
def datasets(request):
    return Response(selectors.datasets(request.query_params))


@answers(GET=storage.Dataset)
@api_view(["GET"])
@permission_classes([Engineer])
def dataset_detail(request, dataset_id: int):
    return Response(selectors.dataset(dataset_id))


class EvaluateInput(serializers.Serializer):
    model_id = serializers.IntegerField(min_value=1)
    dataset_id = serializers.IntegerField(min_value=1)


@answers(POST=(202, storage.Run))
@extend_schema(request=EvaluateInput)
@api_view(["POST"])
@permission_classes([Engineer])
@idempotent
def evaluate(request):
    """A version on every image of a dataset (e.g. the official MNIST test set collected from the `mnist` source):
    a run whose result names the stored evaluation."""
    run = services.evaluation_start(username=request.user.get_username(), **validated(EvaluateInput, request.data))
    return Response(run, status=status.HTTP_202_ACCEPTED)


@answers(GET=gateway.EvaluationPage)
@api_view(["GET"])
@permission_classes([Viewer])
def model_evaluations(request, version_id: int):
    return Response(selectors.evaluations(version_id, request.query_params))


@answers(GET=gateway.ModelVersionPage)
@extend_schema(operation_id="models_list")
@api_view(["GET"])
@permission_classes([Viewer])
def models(request):
    return Response(selectors.model_versions(request.query_params))


FORMAT = "format"


@answers(GET={(200, "application/zip"): Binary, (200, "text/csv"): str})
@extend_schema(parameters=[OpenApiParameter(FORMAT, enum=list(downloads.DATASET_FORMATS), default="idx")])
@api_view(["GET"])
@permission_classes([Engineer])
def dataset_download(request, dataset_id: int):
    """The dataset as the MNIST IDX pair (gzipped, in a ZIP) or a CSV of `label` and 784 pixel columns."""
    fmt = downloads.checked_format(request.query_params.get(FORMAT), downloads.DATASET_FORMATS, "idx")
    content, name = downloads.dataset_file(dataset_id, fmt)
    response_class = StreamingHttpResponse if fmt == "csv" else HttpResponse
    response = response_class(content, content_type=downloads.DATASET_FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@answers(GET={(200, "application/octet-stream"): Binary})
@extend_schema(parameters=[OpenApiParameter(FORMAT, enum=list(downloads.MODEL_FORMATS), default="onnx")])
@api_view(["GET"])
@permission_classes([Engineer])
def model_download(request, version_id: int):
    """The version as a self-contained ONNX file (canonical pixels in, probabilities out) or its safetensors
    weights; `X-Content-SHA256` carries the file's hash, `/card` says how to run it."""
    fmt = downloads.checked_format(request.query_params.get(FORMAT), downloads.MODEL_FORMATS, "onnx")
    data, name, sha256 = downloads.model_file(version_id, fmt)
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-SHA256"] = sha256
    return response


@answers(GET=gateway.ModelCard)
@api_view(["GET"])
@permission_classes([Engineer])
def model_card(request, version_id: int):
    return Response(downloads.model_card(version_id))


class NoteInput(serializers.Serializer):
    note = serializers.CharField(allow_blank=True, max_length=5000)


@answers(GET=storage.ModelVersion, PATCH=storage.ModelVersion)
@extend_schema(methods=["PATCH"], request=NoteInput)
@api_view(["GET", "PATCH"])
@permission_classes([Viewer])
def model_detail(request, version_id: int):
    if request.method == "PATCH":
        require_role(request.user, "ml_engineer")
        note = validated(NoteInput, request.data)["note"]
        return Response(services.model_annotate(username=request.user.get_username(), version_id=version_id, note=note))
    return Response(selectors.model_version(version_id))


REPORT_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8"}


@answers(GET={(200, "application/json"): gateway.ReportInputs, (200, "application/pdf"): Binary,
             (200, "text/html"): str})
@api_view(["GET"])
@permission_classes([Viewer])
def model_report(request, version_id: int, kind: str):
    """The model card as PDF, HTML or the JSON it is made from."""
    if kind == "json":
        return Response(report_inputs(version_id))
    response = HttpResponse(model_report_bytes(version_id, kind), content_type=REPORT_TYPES[kind])
    if kind == "pdf":
        response["Content-Disposition"] = f'attachment; filename="model-v{version_id}-report.pdf"'
    return response


class PromoteInput(serializers.Serializer):
    alias = serializers.ChoiceField(choices=["production", "candidate"], required=False, default="production")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    override = serializers.BooleanField(required=False, default=False,
                                        help_text="promote to production although the gate refuses (reason required)")


@answers(POST=storage.Alias)
@extend_schema(request=PromoteInput)
@api_view(["POST"])
@permission_classes([Admin])
def model_promote(request, version_id: int):
    """Point an alias at this version. To production only through the promotion gate (409 `gate_refused` with its
    figures), unless `override` with a reason."""
    data = validated(PromoteInput, request.data)
    result, _ = rollout.promote(username=request.user.get_username(), version_id=version_id, **data)
    return Response(result)


@answers(GET=storage.ShadowStats)
@api_view(["GET"])
@permission_classes([Viewer])
def model_shadow(request, version_id: int):
    """The version's live record: shadow answers beside production's (count, agreement, confusion, confidences,
    accuracy of each on corrected predictions) and its own answers (canary or production) and their corrections."""
    return Response(rollout.shadow(version_id))


@answers(GET=gateway.Gate)
@api_view(["GET"])
@permission_classes([Viewer])
def model_gate(request, version_id: int):
    """Whether promoting this version to production would pass the gate, with each check's figures."""
    return Response(rollout.gate(version_id))


@answers(GET=gateway.Rollout)
@api_view(["GET"])
@permission_classes([Viewer])
def rollout_overview(request):
    """What serves: production, the candidate and its canary share, the candidate's shadow figures and gate, and
    the last automatic rollback of the past day."""
    return Response(rollout.overview())


class CanaryInput(serializers.Serializer):
    share = serializers.FloatField(min_value=0.0, max_value=0.5, help_text="share of users the candidate answers")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


@answers(POST=storage.RolloutState)
@extend_schema(request=CanaryInput)
@api_view(["POST"])
@permission_classes([Admin])
def rollout_canary(request):
    """Route a share (0-0.5) of users to the candidate, each user always to the same version; in the ledger."""
    share = request.data.get("share") if isinstance(request.data, dict) else None
    if isinstance(share, str):  # a JSON number, not text that float() would read ("０.２" included)
        raise AppError("invalid", "share must be a number from 0 to 0.5.", details={"share": "not a number"})
    data = validated(CanaryInput, request.data)
    return Response(rollout.canary(username=request.user.get_username(), **data))


@answers(GET=gateway.AliasChangePage)
@api_view(["GET"])
@permission_classes([Viewer])
def alias_ledger(request):
    return Response(selectors.alias_ledger(request.query_params))


@answers(GET=gateway.ErrorCell)
@extend_schema(parameters=[
    OpenApiParameter("source", str, description=errors.SOURCES_HELP),
    OpenApiParameter("true", int, description="a cell's row: the true (or corrected) digit, 0-9"),
    OpenApiParameter("predicted", int, description="a cell's column: the version's answer, 0-9"),
])
@api_view(["GET"])
@permission_classes([Engineer])
def model_errors(request, version_id: int):
    """The error browser: the version's confusion matrix from its held-out digits, an evaluation or corrected live
    predictions, and one cell's digits (the most confident first), each with why the version answered it."""
    query = request.query_params
    return Response(errors.error_cell(version_id, source=query.get("source"), **errors.cell_numbers(query)))


@answers(GET=storage.Drift)
@extend_schema(parameters=[OpenApiParameter("days", int, description="days back, 1-31 (default 7)")])
@api_view(["GET"])
@permission_classes([Viewer])
def model_drift(request, version_id: int):
    """The version's traffic per day against its training data: input statistics (ink, box, offset, stroke width)
    and outputs (confidence, class mix), each as a population stability index, with the day's drift level."""
    days = ascii_int(request.query_params.get("days", "7"), field="days", minimum=1, maximum=31)
    return Response(selectors.drift(version_id, days))


class WebhookInput(serializers.Serializer):
    url = serializers.CharField(max_length=500, help_text="an HTTPS endpoint")
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_TYPES)), min_length=1,
                                   max_length=len(EVENT_TYPES))


@answers(GET=gateway.WebhookPage, POST=(201, storage.NewWebhook))
@extend_schema(methods=["POST"], request=WebhookInput)
@api_view(["GET", "POST"])
@permission_classes([Admin])
def webhooks(request):
    """GET: the registered webhooks. POST: register an HTTPS endpoint for events; the answer carries the secret that
    signs its deliveries (HMAC-SHA256 over `<X-DigitLab-Timestamp>.<body>`), shown this once."""
    if request.method == "POST":
        data = validated(WebhookInput, request.data)
        return Response(rollout.webhook_register(username=request.user.get_username(), **data),
                        status=status.HTTP_201_CREATED)
    return Response(selectors.webhooks(request.query_params))


@answers(DELETE=(204, None))
@api_view(["DELETE"])
@permission_classes([Admin])
def webhook_detail(request, webhook_id: int):
    rollout.webhook_delete(username=request.user.get_username(), webhook_id=webhook_id)
    return Response(status=status.HTTP_204_NO_CONTENT)


@answers(GET=gateway.DeliveryPage)
@extend_schema(parameters=[OpenApiParameter("webhook", int), OpenApiParameter("status", str)])
@api_view(["GET"])
@permission_classes([Admin])
def webhook_deliveries(request):
    """Every delivery, newest first: its event, status (pending, delivered, failed), attempts and last answer."""
    return Response(selectors.webhook_deliveries(request.query_params))
