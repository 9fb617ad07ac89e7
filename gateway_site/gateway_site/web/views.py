"""HTML pages: the same view renders a whole page or, for htmx, just its fragment."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gateway_site.accounts.models import AuditEvent
from gateway_site.accounts.roles import ROLE_TITLES, has_role, role_of, role_required, sees_everyones
from gateway_site.accounts.services import account_set_role
from gateway_site.images import pixels_png_data_url
from gateway_site.reports.services import model_report as model_report_bytes
from gateway_site.scenarios import selectors, services
from gateway_site.web import charts
from gateway_site.web.errors import error_answer
from kit.errors import AppError, PeerUnavailable
from kit.validation import MAX_JSON_INTEGER, ascii_int

STATS_DAYS = 14  # the dashboard's monitoring window


def _top(probabilities: list[float], n: int = 3) -> list[dict]:
    ranked = sorted(range(10), key=lambda d: -probabilities[d])[:n]
    return [{"digit": d, "percent": round(probabilities[d] * 100, 1)} for d in ranked]


def _serving_context() -> dict:
    """What serves, or, while nothing does, how far the first model is (for the status panel)."""
    serving, error = _optional(selectors.serving_version, None)
    first_model = None
    if serving is None and error is None:
        first_model, error = _optional(selectors.first_model_status, None)
    return {"serving": serving, "first_model": first_model, "serving_error": error}


@require_GET
@role_required("viewer")
def recognize(request):
    return render(request, "web/recognize.html", {"page": "recognize", **_serving_context()})


@require_GET
@role_required("viewer")
def model_status(request):
    """The status panel alone: polled by the page every 2 s until a model serves, which enables Predict."""
    page = "recognize" if request.GET.get("for") == "recognize" else ""
    return render(request, "web/_model_status.html", {**_serving_context(), "polled": True, "page": page})


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
            "top": _top(result["probabilities"]),
            "image_url": pixels_png_data_url(result["image"]),
        }
        status = 200
    template = "web/_result.html" if request.htmx else "web/recognize.html"
    return render(request, template, context, status=status)


HISTORY_FILTERS = ("digit", "model", "corrected", "since", "until", "user")


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


@require_GET
@role_required("viewer")
def runs(request):
    filters = {k: request.GET[k] for k in ("kind", "status", "created_by") if request.GET.get(k)}
    listing = selectors.runs_for(request.user, {**filters, "page": request.GET.get("page", "1")})
    context = {"page": "runs", "listing": listing, "filters": filters, "query": urlencode(filters),
               "kinds": ["collect", "train", "fine-tune"], "statuses": ["queued", "running", "succeeded", "failed", "cancelled"]}
    return render(request, "web/runs.html", context)


@require_GET
@role_required("viewer")
def run_detail(request, run_id: int):
    """One run with live progress: the panel re-renders itself every 2 s until the run ends."""
    return _run_page(request, run_id)


def _run_page(request, run_id: int):
    run = selectors.run_for(request.user, run_id)
    context = {"page": "runs", "run": run, "chart": charts.training_curves(run["epochs"]) if run["epochs"] else None,
               "can_cancel": has_role(request.user, "ml_engineer") and run["status"] in ("queued", "running")}
    template = "web/_run_panel.html" if request.htmx else "web/run_detail.html"
    return render(request, template, context)


@require_POST
@role_required("ml_engineer")
def run_cancel(request, run_id: int):
    try:
        services.run_cancel(username=request.user.get_username(), run_id=run_id)
    except AppError as exc:
        if exc.status != 409:
            raise
    return _run_page(request, run_id) if request.htmx else redirect("run-detail", run_id=run_id)


def _hp_fields(specs: list[dict], values: dict, errors: dict) -> list[dict]:
    """Form fields from declared hyperparameters: type, bounds, the value shown and its error."""
    fields = []
    for spec in specs:
        kind = {"int": "number", "float": "number", "bool": "checkbox"}[spec["type"]]
        step = "1" if spec["type"] == "int" else "any"
        fields.append({**spec, "input": kind, "step": step, "value": values.get(spec["name"], spec["default"]),
                       "error": errors.get(spec["name"], ""), "id": f"hp-{spec['name']}"})
    return fields


def _hp_from_form(post, specs: list[dict]) -> tuple[dict, dict]:
    """Typed hyperparameters from a form; what cannot be read as its type is an error for that field."""
    values, errors = {}, {}
    for spec in specs:
        name = spec["name"]
        if spec["type"] == "bool":
            values[name] = post.get(name) == "on"
            continue
        raw = post.get(name, "").strip()
        if raw == "":
            continue
        try:
            if not raw.isascii():
                raise ValueError(raw)  # int() and float() take '٣' and friends
            values[name] = int(raw) if spec["type"] == "int" else float(raw)
            if not abs(values[name]) <= MAX_JSON_INTEGER:
                raise ValueError(raw)
        except ValueError:
            errors[name] = f"must be a{'n integer' if spec['type'] == 'int' else ' number'}"
            values[name] = raw
    return values, errors


@require_http_methods(["GET", "POST"])
@role_required("ml_engineer")
def train(request):
    """Start a training (architecture's declared hyperparameters) or a fine-tune; errors stay inline."""
    catalogue = selectors.architectures()
    architectures = {a["name"]: a for a in catalogue["architectures"]}
    datasets, models = selectors.latest("datasets", 100), selectors.latest("versions", 100)
    mode = request.POST.get("mode", request.GET.get("mode", "train"))
    default = catalogue.get("default", next(iter(architectures)))
    chosen = request.POST.get("architecture", request.GET.get("architecture", default))
    if chosen not in architectures:
        chosen = default
    values, errors, message = {}, {}, ""
    specs = catalogue["fine_tune"] if mode == "fine-tune" else architectures[chosen]["hyperparameters"]
    defaults = {spec["name"]: spec["default"] for spec in specs}
    if request.method == "POST":
        values, errors = _hp_from_form(request.POST, specs)
        # A field left at its default is left to the platform (a time-budgeted training sizes width and batch itself).
        asked = {name: value for name, value in values.items() if value != defaults[name]}
        if not errors:
            try:
                if mode == "fine-tune":
                    run = services.fine_tune_start(username=request.user.get_username(),
                                                   base_model_id=ascii_int(request.POST.get("base_model_id", ""), field="base_model_id"), hyperparameters=asked)
                else:
                    run = services.training_start(username=request.user.get_username(), architecture=chosen,
                                                  dataset_id=ascii_int(request.POST.get("dataset_id", ""), field="dataset_id"), hyperparameters=asked)
            except AppError as exc:
                if exc.status >= 500:
                    raise
                message = exc.message
                errors = {k: v for k, v in (exc.details or {}).items() if isinstance(v, str)}
            else:
                target = reverse("run-detail", args=[run["id"]])
                if request.htmx:
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = target
                    return response
                return redirect(target)
    context = {
        "page": "train", "mode": mode, "architectures": architectures.values(), "chosen": chosen,
        "datasets": datasets, "models": models, "fields": _hp_fields(specs, values, errors), "message": message,
        "selected_dataset": request.POST.get("dataset_id", ""), "selected_base": request.POST.get("base_model_id", ""),
    }
    return render(request, "web/train.html", context, status=400 if (errors or message) and not request.htmx else 200)


@require_GET
@role_required("viewer")
def dashboard(request):
    health = services.services_health()
    stats, stats_error = _optional(lambda: selectors.prediction_series(STATS_DAYS), [])
    recent, _ = _optional(lambda: selectors.runs_for(request.user, {"page_size": "8"})["results"], [])
    monitoring = charts.monitoring(stats, days=STATS_DAYS, today=timezone.now().date()) if stats else None
    context = {"page": "dashboard", "health": health, **_serving_context(), "stats_error": stats_error,
               "charts": monitoring, "recent": recent}
    return render(request, "web/dashboard.html", context)


@require_GET
@role_required("viewer")
def compare(request):
    """Two versions side by side: per-class deltas, confusion-matrix difference, samples fixed and broken."""
    versions = selectors.latest("versions", 100)
    baseline, candidate = request.GET.get("baseline", ""), request.GET.get("candidate", "")
    result, error = None, ""
    if baseline and candidate:
        try:
            result = selectors.comparison(ascii_int(baseline, field="baseline"), ascii_int(candidate, field="candidate"))
        except AppError as exc:
            if exc.status >= 500 and not isinstance(exc, PeerUnavailable):
                raise
            error = exc.message
        if result:
            for key in ("fixed", "broken"):
                for sample in result[key]:
                    sample["image_url"] = pixels_png_data_url(sample["image"], scale=2)
            result["per_class_rows"] = [{"digit": d, **v} for d, v in sorted(result["per_class"].items())]
            result["delta_rows"] = [{"label": i, "cells": row} for i, row in enumerate(result["confusion_matrix_delta"])]
    context = {"page": "models", "versions": versions, "baseline": baseline, "candidate": candidate,
               "result": result, "error": error}
    return render(request, "web/compare.html", context)


@require_http_methods(["GET", "POST"])
@role_required("admin")
def console(request):
    """Admin console: promote or roll back with a reason, the alias ledger, the audit log, users and roles."""
    message, error = "", ""
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "promote":
                version_id = ascii_int(request.POST.get("version_id", ""), field="version")
                reason = request.POST.get("reason", "").strip()
                if not reason:
                    raise AppError("invalid", "Say why: a reason is required for every alias move.")
                services.model_promote(username=request.user.get_username(), version_id=version_id,
                                       alias=request.POST.get("alias", "production"), reason=reason)
                message = f"v{version_id} is now {request.POST.get('alias', 'production')}."
            elif action == "role":
                user = User.objects.get(pk=ascii_int(request.POST.get("user_id", ""), field="user"))
                role = request.POST.get("role", "")
                account_set_role(actor=request.user, user=user, role=role)
                message = f"{user.get_username()} is now {ROLE_TITLES[role]}."
        except AppError as exc:
            if exc.status >= 500:
                raise
            error = exc.message
        except (User.DoesNotExist, ValueError, KeyError):
            error = "That user or role does not exist."
    versions, ledger = selectors.latest("versions", 100), selectors.latest("ledger", 50)
    users = [{"id": u.pk, "username": u.get_username(), "role": role_of(u), "last_login": u.last_login}
             for u in User.objects.order_by("username")]
    context = {"page": "console", "versions": versions, "ledger": ledger, "audit": AuditEvent.objects.all()[:50],
               "users": users, "roles": ROLE_TITLES.items(), "message": message, "error": error}
    return render(request, "web/console.html", context, status=400 if error else 200)


@require_GET
@role_required("viewer")
def run_row(request, run_id: int):
    """One run's row; htmx polls it while the run is unfinished."""
    return render(request, "web/_run_row.html", {"run": selectors.run_for(request.user, run_id)})


@require_POST
@role_required("viewer")
def prediction_feedback(request, prediction_id: int):
    """'Wrong? pick the right digit': the correction goes to the review queue."""
    label = request.POST.get("label", "")
    if label not in tuple("0123456789"):
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
    sources, sources_error = _optional(lambda: selectors.sources()["sources"], [])
    log, log_error = _optional(lambda: selectors.collector_log(30)["entries"], [])
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


@require_GET
@role_required("viewer")
def models(request):
    listing = selectors.model_versions({})
    return render(request, "web/models.html", {"page": "models", "listing": listing})


@require_GET
@role_required("viewer")
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


def bad_request(request, exception=None):
    """A body over the size cap is a 413 naming the cap; any other unreadable request a 400."""
    if isinstance(exception, RequestDataTooBig):
        message = f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024} KiB."
        return error_answer(request, status=413, code="too_large", message=message)
    return error_answer(request, status=400, code="bad_request", message="The request could not be understood.")


def server_error(request):
    message = "Something went wrong on our side; it has been logged."
    return error_answer(request, status=500, code="internal_error", message=message)


def forbidden(request, exception=None):
    return error_answer(request, status=403, code="permission_denied", message="Your role does not allow this page.")


def not_found(request, exception=None):
    return error_answer(request, status=404, code="not_found", message=f"There is no such page: {request.path}")
