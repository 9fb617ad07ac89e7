"""storage_svc's own metric families, computed when Prometheus scrapes."""

from __future__ import annotations

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from storage_svc.registry.models import Run


def run_metrics():
    """Runs per status, and how long ago each running run's worker last reported (its heartbeat)."""
    by_status = GaugeMetricFamily("storage_runs", "Runs by kind and status", labels=["kind", "status"])
    counts: dict[tuple[str, str], int] = {}
    for kind, status in Run.objects.values_list("kind", "status"):
        counts[(kind, status)] = counts.get((kind, status), 0) + 1
    for (kind, status), count in sorted(counts.items()):
        by_status.add_metric([kind, status], count)
    yield by_status
    age = GaugeMetricFamily("storage_run_heartbeat_age_seconds", "Seconds since a running run's worker reported",
                            labels=["run", "kind"])
    now = timezone.now()
    for run_id, kind, heartbeat in Run.objects.filter(status=Run.Status.RUNNING).values_list("id", "kind", "heartbeat_at"):
        age.add_metric([str(run_id), kind], (now - heartbeat).total_seconds() if heartbeat else 0.0)
    yield age


def rollout_metrics():
    """The canary's share of users, and the candidate's shadow agreement with production (and on how many)."""
    from storage_svc.registry import rollout

    state = rollout.state()
    share = GaugeMetricFamily("rollout_canary_share", "Share of users the candidate answers (its canary)",
                              labels=["candidate"])
    agreement = GaugeMetricFamily("rollout_shadow_agreement", "Share of shadow-scored predictions where the candidate "
                                  "agreed with production", labels=["candidate"])
    shadowed = GaugeMetricFamily("rollout_shadow_predictions", "Predictions the candidate shadow-scored",
                                 labels=["candidate"])
    candidate = state["candidate"]
    if candidate is not None:
        label = [f"v{candidate.pk}"]
        share.add_metric(label, state["canary_share"])
        stats = rollout.shadow_stats(version_id=candidate.pk)
        shadowed.add_metric(label, stats["count"])
        if stats["agreement"] is not None:
            agreement.add_metric(label, stats["agreement"])
    yield from (share, agreement, shadowed)


def drift_metrics():
    """Today's drift of the production version: each measure's PSI against the training data, and the largest."""
    from storage_svc.registry import drift

    today = drift.production_today()
    measures = GaugeMetricFamily("rollout_drift_psi", "Today's population stability index of a measure of the "
                                 "production version's traffic against its training data", labels=["model_version", "measure"])
    worst = GaugeMetricFamily("rollout_drift", "Today's largest drift PSI of the production version "
                              "(0.1: moderate, 0.25: significant)", labels=["model_version"])
    if today is not None:
        version = f"v{today['model_version']}"
        for name, value in today["inputs"].items():
            if value["psi"] is not None:
                measures.add_metric([version, f"input.{name}"], value["psi"])
        if today["outputs"]["confidence_psi"] is not None:
            measures.add_metric([version, "output.confidence"], today["outputs"]["confidence_psi"])
        measures.add_metric([version, "output.class_mix"], today["outputs"]["class_mix_psi"])
        if today["level"] != "insufficient":
            worst.add_metric([version], today["drift"])
    yield from (measures, worst)


def storage_metrics():
    yield from run_metrics()
    yield from rollout_metrics()
    yield from drift_metrics()
