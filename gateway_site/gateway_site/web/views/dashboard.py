"""The dashboard: services, what serves, monitoring charts, recent runs."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from gateway_site.accounts.roles import role_required
from gateway_site.scenarios import rollout, selectors, services
from gateway_site.web import charts
from gateway_site.web.views.common import optional_section, serving_context

STATS_DAYS = 14  # the dashboard's monitoring window


@require_GET
@role_required("viewer")
def dashboard(request):
    health = services.services_health()
    stats, stats_error = optional_section(lambda: selectors.prediction_series(STATS_DAYS), [])
    recent, _ = optional_section(lambda: selectors.runs_for(request.user, {"page_size": "8"})["results"], [])
    monitoring = charts.monitoring(stats, days=STATS_DAYS, today=timezone.now().date()) if stats else None
    rollback, _ = optional_section(rollout.recent_rollback, None)
    drift, _ = optional_section(selectors.production_drift, None)
    context = {"page": "dashboard", "health": health, **serving_context(), "stats_error": stats_error,
               "charts": monitoring, "recent": recent, "rollback": rollback, "drift": drift}
    return render(request, "web/dashboard.html", context)
