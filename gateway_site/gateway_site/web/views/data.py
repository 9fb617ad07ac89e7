"""Datasets, collecting, and the review queue of user samples."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from gateway_site.accounts.roles import role_required
from gateway_site.images import pixels_png_data_url
from gateway_site.scenarios import selectors, services
from gateway_site.web import charts
from gateway_site.web.views.common import optional_section
from kit.errors import AppError
from kit.validation import ascii_int


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
        "log_error": log_error, "listing": listing,
    }
    return render(request, "web/datasets.html", context)


@require_POST
@role_required("ml_engineer")
def collect(request):
    form = request.POST
    try:
        batch_size = ascii_int(form.get("batch_size") or "1000", field="Batch size", maximum=100_000)
        max_samples = ascii_int(form["max_samples"], field="At most") if form.get("max_samples") else None
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
