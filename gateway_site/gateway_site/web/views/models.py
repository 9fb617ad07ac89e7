"""Model versions, their reports, comparisons and the admin console (promote, roles)."""

from __future__ import annotations

import functools

from django.contrib.auth.models import User
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from gateway_site.accounts.models import AuditEvent
from gateway_site.accounts.roles import ROLE_TITLES, role_of, role_required
from gateway_site.accounts.services import account_set_role
from gateway_site.images import pixels_png_data_url
from gateway_site.reports.services import model_report as model_report_bytes
from gateway_site.scenarios import errors, rollout, selectors
from gateway_site.web.forms import (
    CanaryForm,
    PromoteForm,
    RoleForm,
    SendToReviewForm,
    WebhookDeleteForm,
    WebhookForm,
    problem,
)
from gateway_site.web.views.common import optional_section
from kit.errors import AppError, PeerUnavailable
from kit.validation import ascii_int
from kit.webhooks import EVENT_TYPES


@require_GET
@role_required("viewer")
def models(request):
    listing = selectors.model_versions({})
    overview, error = optional_section(rollout.overview, None)
    return render(request, "web/models.html", {"page": "models", "listing": listing, "rollout": overview,
                                               "rollout_error": error})


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


def _error_view(version_id: int, query) -> dict:
    """The error browser's matrix (and cell) as pages show them; what went wrong instead, if anything."""
    try:
        view = errors.error_cell(version_id, source=query.get("source"), **errors.cell_numbers(query))
    except AppError as exc:
        if exc.status >= 500 and not isinstance(exc, PeerUnavailable):
            raise
        return {"error": exc.message}
    cell = view["cell"]
    if cell:
        for item in cell["items"]:
            item["image_url"] = pixels_png_data_url(item["image"], scale=2)
            item["overlay_url"] = "data:image/png;base64," + item["overlay_png"]
    view["rows"] = [{"label": t, "cells": [{"predicted": p, "count": count} for p, count in enumerate(row)]}
                    for t, row in enumerate(view["matrix"])]
    return {"view": view}


@require_GET
@role_required("ml_engineer")
def model_errors(request, version_id: int):
    """The error browser of a version: pick where its mistakes come from, then a cell of its confusion matrix."""
    source = request.GET.get("source") or "held-out"
    evaluations, evaluations_error = optional_section(
        lambda: [{**e, "source": f"evaluation:{e['id']}"} for e in selectors.evaluations(version_id, {})["results"]], [])
    context = {"page": "models", "version_id": version_id, "source": source, "evaluations": evaluations,
               "evaluations_error": evaluations_error, **_error_view(version_id, request.GET),
               "digits": range(10)}
    template = "web/_error_cell.html" if request.htmx and request.GET.get("true") else "web/errors.html"
    return render(request, template, context)


@require_POST
@role_required("ml_engineer")
def model_errors_review(request, version_id: int):
    """Send the chosen digits of a cell to the review queue with one label."""
    form = SendToReviewForm(request.POST)
    if not form.is_valid():
        return render(request, "web/_sent.html", {"error": problem(form)})
    try:
        created = errors.send_to_review(username=request.user.get_username(), label=int(form.cleaned_data["label"]),
                                        images=form.cleaned_data["image"])
    except AppError as exc:
        if exc.status >= 500 and not isinstance(exc, PeerUnavailable):
            raise
        return render(request, "web/_sent.html", {"error": exc.message})
    return render(request, "web/_sent.html", {"created": created["created"], "label": form.cleaned_data["label"]})


@require_GET
@role_required("admin")
def console(request):
    """Admin console: promote or roll back with a reason, the alias ledger, the audit log, users and roles."""
    return _console_page(request)


def console_action(form_class):
    """A Console form's POST: the form checked, then the action, whose answer (`message`, or `error` and what it
    needs) is shown on the Console page again; a refusal (4xx) is shown there too, a failure (5xx) raised."""

    def wrap(action):
        @require_POST
        @role_required("admin")
        @functools.wraps(action)
        def view(request):
            form = form_class(request.POST)
            if not form.is_valid():
                return _console_page(request, error=problem(form))
            try:
                shown = action(request.user.get_username(), form.cleaned_data)
            except AppError as exc:
                if exc.status >= 500:
                    raise
                return _console_page(request, error=exc.message)
            return _console_page(request, **shown)

        return view

    return wrap


@console_action(PromoteForm)
def console_promote(username: str, data: dict) -> dict:
    version_id, alias = data["version_id"], data["alias"] or "production"
    try:
        _, overridden = rollout.promote(username=username, version_id=version_id, alias=alias, reason=data["reason"],
                                        override=data["override"])
    except AppError as exc:
        if exc.code != "gate_refused":
            raise
        return {"error": exc.message, "refused": version_id}
    past = " past the gate (an override, in the ledger)" if overridden else ""
    return {"message": f"v{version_id} is now {alias}{past}."}


@console_action(CanaryForm)
def console_canary(username: str, data: dict) -> dict:
    state = rollout.canary(username=username, share=data["percent"] / 100, reason=data["reason"])
    return {"message": f"{state['candidate']['version']} now answers {data['percent']} % of users."}


@require_POST
@role_required("admin")
def console_role(request):
    form = RoleForm(request.POST)
    user = User.objects.filter(pk=form.cleaned_data["user_id"]).first() if form.is_valid() else None
    if user is None:
        return _console_page(request, error=problem(form) or "That user does not exist.")
    role = form.cleaned_data["role"]
    try:
        account_set_role(actor=request.user, user=user, role=role)
    except AppError as exc:
        return _console_page(request, error=exc.message)
    return _console_page(request, message=f"{user.get_username()} is now {ROLE_TITLES[role]}.")


@console_action(WebhookForm)
def console_webhook(username: str, data: dict) -> dict:
    hook = rollout.webhook_register(username=username, url=data["url"], events=data["events"])
    return {"message": f"Webhook {hook['id']} registered for {', '.join(hook['events'])}.", "new_hook": hook}


@console_action(WebhookDeleteForm)
def console_webhook_delete(username: str, data: dict) -> dict:
    rollout.webhook_delete(username=username, webhook_id=data["webhook_id"])
    return {"message": f"Webhook {data['webhook_id']} deleted."}


def _console_page(request, *, message: str = "", error: str = "", refused: int | None = None,
                  new_hook: dict | None = None):
    versions, ledger = selectors.latest("versions", 100), selectors.latest("ledger", 50)
    users = [{"id": u.pk, "username": u.get_username(), "role": role_of(u), "last_login": u.last_login}
             for u in User.objects.order_by("username")]
    overview, rollout_error = optional_section(rollout.overview, None)
    hooks, _ = optional_section(lambda: selectors.webhooks({})["results"], [])
    deliveries, _ = optional_section(lambda: selectors.webhook_deliveries({"page_size": "20"})["results"], [])
    context = {"page": "console", "versions": versions, "ledger": ledger, "audit": AuditEvent.objects.all()[:50],
               "users": users, "roles": ROLE_TITLES.items(), "message": message, "error": error,
               "rollout": overview, "rollout_error": rollout_error, "refused": refused, "hooks": hooks,
               "deliveries": deliveries, "new_hook": new_hook, "event_types": EVENT_TYPES}
    return render(request, "web/console.html", context, status=400 if error else 200)
