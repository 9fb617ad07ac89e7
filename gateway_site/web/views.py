"""HTML pages: the same view renders a whole page or, for htmx, just its fragment."""

from __future__ import annotations

import base64
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from reports.services import model_report as model_report_bytes

from accounts.roles import has_role
from api import selectors, services
from gateway_site import peers
from kit.errors import AppError, PeerUnavailable
from web.images import pixels_png_data_url

MAX_UPLOAD_BYTES = services.MAX_IMAGE_BYTES


def role_required(role: str):
    """A page for `role` and above; others get the 403 page."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This page needs the {role} role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def _top(probabilities: list[float], n: int = 3) -> list[dict]:
    ranked = sorted(range(10), key=lambda d: -probabilities[d])[:n]
    return [{"digit": d, "percent": round(probabilities[d] * 100, 1)} for d in ranked]


@require_GET
@login_required
def recognize(request):
    return render(request, "web/recognize.html", {"page": "recognize"})


@require_POST
@login_required
def recognize_submit(request):
    """Classify the drawn canvas (a PNG data URL) or an uploaded file."""
    context: dict = {"page": "recognize"}
    try:
        upload = request.FILES.get("image_file")
        if upload is not None:
            if upload.size > MAX_UPLOAD_BYTES:
                raise AppError("too_large", "That file is larger than 2 MiB.", status=413)
            raw = upload.read()
        else:
            data_url = request.POST.get("image_data", "")
            if not data_url.startswith("data:image/png;base64,"):
                raise AppError("blank_image", "Draw a digit on the canvas first.", status=422)
            raw = base64.b64decode(data_url.partition(",")[2], validate=True)
        result = services.prediction_create(username=request.user.get_username(), payload={}, raw_image=raw)
    except AppError as exc:
        if exc.status >= 500:
            raise
        context["error"] = exc.message
        # For htmx the fragment with the message is the answer; a full page keeps the 4xx status.
        status = 200 if request.htmx else exc.status
    except ValueError:
        context["error"] = "The drawing could not be read; please try again."
        status = 200 if request.htmx else 400
    else:
        context["result"] = {
            **result,
            "top": _top(result["probabilities"]),
            "image_url": pixels_png_data_url(result["image"]),
        }
        status = 200
    template = "web/_result.html" if request.htmx else "web/recognize.html"
    return render(request, template, context, status=status)


@require_GET
@login_required
def history(request):
    listing = selectors.predictions_for(request.user, request.GET)
    for item in listing["results"]:
        item["image_url"] = pixels_png_data_url(item["image"], scale=2)
        item["confidence"] = round(max(item["probabilities"]) * 100, 1)
    context = {
        "page": "history",
        "listing": listing,
        "digit": request.GET.get("digit", ""),
        "show_user": has_role(request.user, "ml_engineer"),
    }
    template = "web/_history_table.html" if request.htmx else "web/history.html"
    return render(request, template, context)


@require_GET
@login_required
def runs(request):
    listing = selectors.runs_for(request.user, request.GET)
    return render(request, "web/runs.html", {"page": "runs", "listing": listing})


@require_GET
@login_required
def run_row(request, run_id: int):
    """One run's row; htmx polls it while the run is unfinished."""
    return render(request, "web/_run_row.html", {"run": selectors.run_for(request.user, run_id)})


@require_POST
@login_required
def prediction_feedback(request, prediction_id: int):
    """'Wrong? pick the right digit': the correction goes to the review queue."""
    label = request.POST.get("label", "")
    if not (label.isdigit() and len(label) == 1):
        return render(request, "web/_feedback.html", {"error": "Pick a digit from 0 to 9."})
    services.prediction_correct(user=request.user, prediction_id=prediction_id, label=int(label))
    return render(request, "web/_feedback.html", {"label": label})


def _optional(call, default):
    """A section that needs a peer shows why it is empty instead of failing the whole page."""
    try:
        return call(), None
    except PeerUnavailable as exc:
        return default, exc.message


@require_GET
@role_required("ml_engineer")
def datasets(request):
    sources, sources_error = _optional(lambda: peers.collector().info()["sources"], [])
    log, log_error = _optional(lambda: peers.collector().request_log(30)["entries"], [])
    params = {k: request.GET[k] for k in ("source", "page") if request.GET.get(k)}
    listing = selectors.page_of(peers.storage().list_datasets(**params), params)
    for dataset in listing["results"]:
        dataset["chart"] = {"x": [str(d) for d in range(10)], "y": [dataset["class_counts"][str(d)] for d in range(10)]}
        dataset["chart_id"] = f"chart-{dataset['id']}"
    context = {
        "page": "datasets", "sources": sources, "sources_error": sources_error, "log": log,
        "log_error": log_error, "listing": listing,
    }
    return render(request, "web/datasets.html", context)


@require_POST
@role_required("ml_engineer")
def collect(request):
    form = request.POST
    try:
        batch_size = int(form.get("batch_size") or 1000)
        max_samples = int(form["max_samples"]) if form.get("max_samples") else None
    except ValueError:
        return render(request, "web/_collect_result.html", {"error": "Batch size and maximum must be whole numbers."})
    try:
        run = services.collect_start(
            username=request.user.get_username(), source=form.get("source", ""), split=form.get("split", "train"),
            batch_size=batch_size, max_samples=max_samples,
        )
    except AppError as exc:
        if exc.status >= 500:
            raise
        return render(request, "web/_collect_result.html", {"error": exc.message})
    return render(request, "web/_collect_result.html", {"run": run})


@require_GET
@role_required("ml_engineer")
def review(request):
    status = request.GET.get("status", "pending")
    listing = selectors.samples({"status": status, "page": request.GET.get("page", "1")})
    for sample in listing["results"]:
        sample["image_url"] = pixels_png_data_url(sample["image"], scale=3)
    return render(request, "web/review.html", {"page": "review", "listing": listing, "status": status})


@require_POST
@role_required("ml_engineer")
def review_decide(request, sample_id: int):
    decision = request.POST.get("decision", "")
    if decision not in ("accept", "reject"):
        raise AppError("invalid", "decision must be accept or reject")
    sample = services.sample_review(username=request.user.get_username(), sample_id=sample_id, decision=decision)
    sample["image_url"] = pixels_png_data_url(sample["image"], scale=3)
    return render(request, "web/_sample_card.html", {"sample": sample})


@require_GET
@login_required
def models(request):
    listing = selectors.page_of(peers.storage().list_model_versions(), {})
    return render(request, "web/models.html", {"page": "models", "listing": listing})


@require_GET
@login_required
def model_report(request, version_id: int, kind: str):
    """The model card: HTML in the browser, or the PDF as a download."""
    if kind == "json":
        raise AppError("not_found", "The JSON report is in the API: /api/models/<id>/report.json", status=404)
    data = model_report_bytes(version_id, kind)
    if kind == "html":
        return HttpResponse(data, content_type="text/html; charset=utf-8")
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="model-v{version_id}-report.pdf"'
    return response


def forbidden(request, exception=None):
    return render(request, "web/error.html", {"status": 403, "message": "Your role does not allow this page."}, status=403)


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        from kit.errors import json_404

        return json_404(request, exception)
    return render(request, "web/error.html", {"status": 404, "message": "There is no such page."}, status=404)
