"""`/health` (the process answers) and `/ready` (its dependencies answer) views."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connections
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from kit.metrics import metrics_view

Check = Callable[[], None]


def database_check(alias: str = "default") -> Check:
    def check() -> None:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")

    return check


def health_view(service: str):
    @require_GET
    def health(request):
        return JsonResponse({"status": "ok", "service": service})

    return health


def ready_view(service: str, checks: dict[str, Check]):
    """Runs every check; 200 when all pass, else 503 naming the failing ones."""

    @require_GET
    def ready(request):
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                check()
                results[name] = "ok"
            except Exception as exc:  # a readiness probe reports any failure, it never raises
                results[name] = f"error: {exc.__class__.__name__}: {exc}"[:300]
        ok = all(value == "ok" for value in results.values())
        return JsonResponse(
            {"status": "ok" if ok else "unavailable", "service": service, "checks": results},
            status=200 if ok else 503,
        )

    return ready


def service_routes(service: str, checks: dict[str, Check], *, metrics: Callable | None = None,
                   guard_metrics: Callable | None = None) -> list:
    """`/health`, `/ready` (running `checks`) and `/metrics` (plus the families `metrics` yields), as every service
    answers them; `guard_metrics` wraps the metrics view where the service is public."""
    metrics_route = metrics_view(metrics)
    return [
        path("health", health_view(service)),
        path("ready", ready_view(service, checks)),
        path("metrics", guard_metrics(metrics_route) if guard_metrics else metrics_route),
    ]
