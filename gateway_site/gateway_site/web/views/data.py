"""Datasets, collecting, and the review queue of user samples."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from gateway_site.accounts.roles import role_required
from gateway_site.images import pixels_png_data_url
from gateway_site.scenarios import selectors, services
from gateway_site.web import charts
from gateway_site.web.forms import CollectForm, ReviewForm, problem
from gateway_site.web.views.common import optional_section
from kit.errors import AppError


@require_GET
@role_required("ml_engineer")
def datasets(request):
    sources, sources_error = optional_section(lambda: selectors.sources()["sources"], [])
    log, log_error = optional_section(lambda: selectors.collector_log(30)["entries"], [])
    listing = selectors.datasets(request.GET)
    for dataset in listing["results"]:
        dataset["chart"] = charts.class_counts(dataset["class_counts"])
        dataset["chart_id"] = f"chart-{dataset['id']}"
    context = {
        "page": "datasets", "sources": sources, "sources_error": sources_error, "log": log,
        "log_error": log_error, "listing": listing, "upload_max_mib": settings.UPLOAD_MAX_BYTES // (1024 * 1024),
    }
    return render(request, "web/datasets.html", context)


@require_POST
@role_required("ml_engineer")
def collect(request):
    form = CollectForm(request.POST)
    if not form.is_valid():
        return render(request, "web/_collect_result.html", {"error": problem(form)})
    given = form.cleaned_data
    try:
        run = services.collect_start(
            username=request.user.get_username(), source=given["source"], split=given["split"] or "train",
            batch_size=given["batch_size"] or 1000, max_samples=given["max_samples"],
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
    order = "uncertainty" if request.GET.get("order") == "uncertainty" else "newest"
    listing = selectors.samples({"status": status, "order": order, "page": request.GET.get("page", "1")})
    for sample in listing["results"]:
        sample["image_url"] = pixels_png_data_url(sample["image"], scale=3)
    context = {"page": "review", "listing": listing, "status": status, "order": order,
               "with_live": order == "uncertainty" and status == "pending" and request.GET.get("live") == "1"}
    if context["with_live"]:  # live answers nobody has labelled, the least sure first: label them here
        live, context["live_error"] = optional_section(lambda: selectors.predictions_for(
            request.user, {"corrected": "false", "live": "true", "order": "uncertainty", "page_size": "12"}), None)
        for prediction in (live or {}).get("results", []):
            prediction["image_url"] = pixels_png_data_url(prediction["image"], scale=3)
        context["live"] = live
    return render(request, "web/review.html", context)


@require_POST
@role_required("ml_engineer")
def review_decide(request, sample_id: int):
    form = ReviewForm(request.POST)
    if not form.is_valid():
        raise AppError("invalid", problem(form))
    sample = services.sample_review(username=request.user.get_username(), sample_id=sample_id,
                                    decision=form.cleaned_data["decision"])
    sample["image_url"] = pixels_png_data_url(sample["image"], scale=3)
    return render(request, "web/_sample_card.html", {"sample": sample})
