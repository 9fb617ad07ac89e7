"""Runs (live progress, cancel) and the training form."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gateway_site.accounts.roles import has_role, role_required
from gateway_site.scenarios import selectors, services
from gateway_site.web import charts
from gateway_site.web.views.common import optional_section
from kit.errors import AppError
from kit.validation import MAX_JSON_INTEGER, ascii_int, parse_json_body


@require_GET
@role_required("viewer")
def runs(request):
    filters = {k: request.GET[k] for k in ("kind", "status", "created_by") if request.GET.get(k)}
    listing = selectors.runs_for(request.user, {**filters, "page": request.GET.get("page", "1")})
    context = {"page": "runs", "listing": listing, "filters": filters, "query": urlencode(filters),
               "kinds": ["collect", "train", "fine-tune", "evaluate", "infer", "sweep"], "statuses": ["queued", "running", "succeeded", "failed", "cancelled"]}
    return render(request, "web/runs.html", context)


@require_GET
@role_required("viewer")
def run_detail(request, run_id: int):
    """One run with live progress until it ends: re-rendered at each of its server-sent events (run_events.js), or,
    without them, every 2 s (`live=1`: a refresh the events asked for, so the panel does not poll too)."""
    return _run_page(request, run_id)


def _run_page(request, run_id: int):
    run = selectors.run_for(request.user, run_id)
    context = {"page": "runs", "run": run, "chart": charts.training_curves(run["epochs"]) if run["epochs"] else None,
               "can_cancel": has_role(request.user, "ml_engineer") and run["status"] in ("queued", "running"),
               "live": request.GET.get("live") == "1"}
    if run["kind"] == "sweep":
        sweep, context["sweep_error"] = optional_section(lambda: selectors.sweep_of(request.user, run_id), None)
        if sweep is not None:
            context["sweep"] = sweep
            context["sweep_charts"] = [(f"sweep-{name}", label, {"traces": spec["data"], "layout": {
                **spec["layout"], "height": 340, "margin": {"l": 110, "r": 30, "t": 44, "b": 50}}})
                                       for name, label in SWEEP_CHARTS if (spec := sweep["charts"][name])]
    template = "web/_run_panel.html" if request.htmx else "web/run_detail.html"
    return render(request, template, context)


SWEEP_CHARTS = (("history", "Optimisation history: each trial's held-out accuracy and the best so far"),
                ("parallel", "Parallel coordinates: each trial's parameters and its held-out accuracy"),
                ("importances", "Parameter importances for the held-out accuracy"))


@require_POST
@role_required("ml_engineer")
def run_cancel(request, run_id: int):
    try:
        services.run_cancel(username=request.user.get_username(), run_id=run_id)
    except AppError as exc:
        if exc.status != 409:
            raise
    return _run_page(request, run_id) if request.htmx else redirect("run-detail", run_id=run_id)


@require_GET
@role_required("viewer")
def run_row(request, run_id: int):
    """One run's row; htmx polls it while the run is unfinished."""
    return render(request, "web/_run_row.html", {"run": selectors.run_for(request.user, run_id)})


SWEEP_EXAMPLE = ('{"learning_rate": {"low": 0.0005, "high": 0.02, "log": true},\n "width": {"low": 8, "high": 32},\n'
                 ' "dropout": {"low": 0.0, "high": 0.5},\n "weight_decay": {"low": 0.00001, "high": 0.01, "log": true}}')


def _sweep_form(request, architectures: dict, datasets: list, chosen: str):
    """Start a sweep: the search space and fixed values as JSON; a refusal stays on the form, naming the field."""
    post = request.POST
    message = ""
    if request.method == "POST":
        try:
            run = services.sweep_start(
                username=request.user.get_username(), architecture=chosen,
                dataset_id=ascii_int(post.get("dataset_id", ""), field="dataset_id"),
                search_space=_json_object(post.get("search_space", ""), "search_space"),
                hyperparameters=_json_object(post.get("hyperparameters", "") or "{}", "hyperparameters"),
                trials=ascii_int(post.get("trials", ""), field="trials", maximum=200),
                max_parallel=ascii_int(post.get("max_parallel", ""), field="max_parallel", maximum=32),
                time_budget_s=0, seed=0)
        except AppError as exc:
            if exc.status >= 500:
                raise
            message = exc.message
        else:
            return redirect("run-detail", run_id=run["id"])
    context = {"page": "train", "mode": "sweep", "architectures": architectures.values(), "chosen": chosen,
               "datasets": datasets, "message": message, "selected_dataset": post.get("dataset_id", ""),
               "search_space": post.get("search_space", SWEEP_EXAMPLE), "fixed": post.get("hyperparameters", '{"epochs": 4}'),
               "trials": post.get("trials", "16"), "max_parallel": post.get("max_parallel", "2")}
    return render(request, "web/train.html", context, status=400 if message else 200)


def _json_object(text: str, field: str) -> dict:
    """A form field holding a JSON object, read as strictly as an API body (depth, integers, NUL)."""
    try:
        value = parse_json_body(text.encode("utf-8", "replace"))
    except AppError:
        raise AppError("invalid", f"{field} is not valid JSON.", details={field: "not JSON"}) from None
    if not isinstance(value, dict):
        raise AppError("invalid", f"{field} must be a JSON object.", details={field: "not an object"})
    return value


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
    if mode == "sweep":
        return _sweep_form(request, architectures, datasets, chosen)
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
