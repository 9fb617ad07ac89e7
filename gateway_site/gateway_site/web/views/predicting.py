"""Recognise (draw, upload, the answer and the 28x28 input), corrections and the prediction history."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from gateway_site.accounts.roles import role_required, sees_everyones
from gateway_site.images import pixels_png_data_url
from gateway_site.scenarios import selectors, services
from gateway_site.web.forms import CorrectionForm, problem
from gateway_site.web.views.common import serving_context, top_digits
from kit.errors import AppError, PeerUnavailable

HISTORY_FILTERS = ("digit", "model", "run", "corrected", "since", "until", "user")


@require_GET
@role_required("viewer")
def recognize(request):
    return render(request, "web/recognize.html", {"page": "recognize", **serving_context()})


@require_GET
@role_required("viewer")
def model_status(request):
    """The status panel alone: polled by the page every 2 s until a model serves, which enables Predict."""
    page = "recognize" if request.GET.get("for") == "recognize" else ""
    return render(request, "web/_model_status.html", {**serving_context(), "polled": True, "page": page})


@require_POST
@role_required("viewer")
def recognize_submit(request):
    """Classify the drawn canvas (a PNG data URL) or an uploaded file."""
    context: dict = {"page": "recognize"}
    try:
        upload = request.FILES.get("image_file")
        if upload is not None:
            services.check_image_size(upload.size)
            raw = upload.read()
        else:
            data_url = request.POST.get("image_data", "")
            if not data_url.startswith("data:image/png;base64,"):
                raise AppError("blank_image", "Draw a digit on the canvas first.", status=422)
            raw = base64.b64decode(data_url.partition(",")[2], validate=True)
        result = services.prediction_create(username=request.user.get_username(), payload={}, raw_image=raw)
    except AppError as exc:
        if exc.status >= 500 and exc.code != "no_model":
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
            "top": top_digits(result["probabilities"]),
            "image_url": pixels_png_data_url(result["image"]),
        }
        status = 200
    template = "web/_result.html" if request.htmx else "web/recognize.html"
    return render(request, template, context, status=status)


@require_POST
@role_required("viewer")
def prediction_feedback(request, prediction_id: int):
    """'Wrong? pick the right digit': the correction goes to the review queue."""
    form = CorrectionForm(request.POST)
    if not form.is_valid():
        return render(request, "web/_feedback.html", {"error": problem(form)})
    label = form.cleaned_data["label"]
    services.prediction_correct(user=request.user, prediction_id=prediction_id, label=int(label))
    return render(request, "web/_feedback.html", {"label": label})


@require_GET
@role_required("viewer")
def prediction_why(request, prediction_id: int):
    """'Why 9?': the explanation of one's own prediction, as an overlay on what the model saw."""
    context: dict = {}
    try:
        explanation = services.prediction_explanation(user=request.user, prediction_id=prediction_id)
    except AppError as exc:
        if exc.status >= 500 and not isinstance(exc, PeerUnavailable):
            raise
        context["error"] = exc.message
    else:
        context["why"] = why_context(explanation)
    return render(request, "web/_why.html", context)


def why_context(explanation: dict) -> dict:
    """An explanation as pages show it: the overlay and the nearest training digits as image URLs."""
    nearest = explanation.get("nearest")
    return {**explanation, "overlay_url": "data:image/png;base64," + explanation["overlay_png"],
            "nearest": None if nearest is None else
            [{**example, "image_url": pixels_png_data_url(example["image"], scale=3)} for example in nearest]}


@require_GET
@role_required("viewer")
def history(request):
    filters = selectors.checked_filters(request.GET, HISTORY_FILTERS)
    if request.GET.get("format") == "csv":
        return _history_csv(request, filters)
    listing = selectors.predictions_for(request.user, {**filters, "page": request.GET.get("page", "1")})
    for item in listing["results"]:
        item["image_url"] = pixels_png_data_url(item["image"], scale=2)
        item["confidence"] = round(max(item["probabilities"]) * 100, 1)
    context = {
        "page": "history",
        "listing": listing,
        "filters": filters,
        "query": urlencode(filters),
        "show_user": sees_everyones(request.user),
    }
    template = "web/_history_table.html" if request.htmx else "web/history.html"
    return render(request, template, context)


def _history_csv(request, filters: dict) -> StreamingHttpResponse:
    """Every matching prediction (up to 10,000) as CSV, page by page from storage."""

    def fetch(number: int) -> dict:
        return selectors.predictions_for(request.user, {**filters, "page": str(number), "page_size": "500"})

    first = fetch(1)  # before the answer starts: a refusal or an outage is still an error status, not a cut file

    def rows():
        yield "id,created_at,user,digit,confidence,model_version,corrected_label\r\n"
        for page in range(1, 21):
            listing = first if page == 1 else fetch(page)
            for p in listing["results"]:
                confidence = f"{max(p['probabilities']):.4f}"
                corrected = "" if p["corrected_label"] is None else p["corrected_label"]
                yield f"{p['id']},{p['created_at']},{_csv_cell(p['user'])},{p['digit']},{confidence},{p['model']['version']},{corrected}\r\n"
            if not listing["has_next"]:
                break

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="predictions.csv"'
    return response


def _csv_cell(value: str) -> str:
    """Quote a user-controlled cell, and defuse formulas for spreadsheet programs."""
    value = str(value)
    if value[:1] in ("=", "+", "-", "@"):
        value = "'" + value
    return '"' + value.replace('"', '""') + '"'
