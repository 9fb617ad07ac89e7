"""Prometheus metrics: request counts and latency for every service, plus service-specific families.

The HTTP servers run several processes; when $PROMETHEUS_MULTIPROC_DIR is set (the local run and
compose set it, one folder per service, emptied at start) every process writes there and
`/metrics` adds them up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.registry import REGISTRY, Collector

REQUESTS = Counter("http_requests_total", "HTTP requests by endpoint, method and status",
                   ["service", "endpoint", "method", "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency by endpoint", ["service", "endpoint"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
PREDICTIONS = Counter("predictions_total", "Answered predictions by model version, digit and the arithmetic that served",
                      ["model_version", "digit", "precision"])
RUNS = Counter("runs_total", "Finished runs by kind and outcome", ["kind", "outcome"])


class MetricsMiddleware:
    """Counts every request by its URL pattern (not its raw path, which would explode the label set)."""

    def __init__(self, get_response):
        self.get_response = get_response
        from django.conf import settings

        self.service = settings.SERVICE_NAME

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        endpoint = f"/{match.route}" if match is not None and match.route else "unmatched"
        REQUESTS.labels(self.service, endpoint, request.method, str(response.status_code)).inc()
        LATENCY.labels(self.service, endpoint).observe(time.perf_counter() - started)
        return response


def metrics_view(extra: Callable[[], Iterable] | None = None):
    """`GET /metrics` in Prometheus text; `extra` yields metric families computed at scrape time."""

    class ScrapeTime(Collector):
        def collect(self):
            yield from extra()

    scrape_time = CollectorRegistry()
    if extra:
        scrape_time.register(ScrapeTime())

    def view(request):
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            processes = CollectorRegistry()
            multiprocess.MultiProcessCollector(processes)
        else:
            processes = REGISTRY
        body = generate_latest(processes) + generate_latest(scrape_time)
        return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)

    return view
