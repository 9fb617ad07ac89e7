"""Reads through the gateway, with each role's visibility applied."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway_site import peers
from gateway_site.accounts.roles import sees_everyones
from kit.contracts import collector, gateway, ml, storage
from kit.errors import AppError
from kit.validation import MAX_ID, ascii_int, calendar_day, clean_text

PREDICTION_FILTERS = ("digit", "model", "run", "user", "corrected", "live", "order", "since", "until", "page", "page_size")
SAMPLE_FILTERS = ("status", "user", "order", "page", "page_size")
RUN_FILTERS = ("kind", "status", "created_by", "parent_run", "page", "page_size")


# Filters that are numbers (the others are text): their bounds.
NUMBER_FILTERS = {"digit": (0, 9), "model": (1, MAX_ID), "run": (1, MAX_ID), "parent_run": (1, MAX_ID), "version": (1, MAX_ID), "webhook": (1, MAX_ID), "page": (1, MAX_ID),
                  "page_size": (1, 500)}
DATASET_FILTERS = ("source", "split", "page")
MODEL_FILTERS = ("architecture", "page")
LEDGER_FILTERS = ("version", "alias", "action", "page", "page_size")
DATE_FILTERS = ("since", "until")


def checked_filters(params, allowed) -> dict:
    """The filters given, checked: numbers in ASCII digits within bounds, text without control characters."""
    filters = {}
    for key in allowed:
        value = params.get(key)
        if value in (None, ""):
            continue
        if key in DATE_FILTERS:
            filters[key] = calendar_day(value, field=key).isoformat()
        elif key in NUMBER_FILTERS:
            low, high = NUMBER_FILTERS[key]
            filters[key] = ascii_int(value, field=key, minimum=low, maximum=high)
        else:
            filters[key] = clean_text(value, field=key, max_length=150)
    return filters


def predictions_for(user, params) -> dict:
    """A viewer sees their own predictions; engineers see everyone's."""
    filters = checked_filters(params, PREDICTION_FILTERS)
    if not sees_everyones(user):
        filters["user"] = user.get_username()
    return page_of(peers.storage().list_predictions(**filters), filters)


def runs_for(user, params) -> dict:
    filters = checked_filters(params, RUN_FILTERS)
    if not sees_everyones(user):
        filters["created_by"] = user.get_username()
    return page_of(peers.storage().list_runs(**filters), filters)


def samples(params) -> dict:
    filters = checked_filters(params, SAMPLE_FILTERS)
    return page_of(peers.storage().list_samples(**filters), filters)


def run_for(user, run_id: int) -> dict:
    run = peers.storage().get_run(run_id)
    if not sees_everyones(user) and run["created_by"] != user.get_username():
        # Another user's run is reported as missing, not as forbidden.
        raise AppError("not_found", f"run {run_id} does not exist", status=404)
    return run


def run_results_csv(user, run_id: int) -> tuple[bytes, str]:
    """A finished scoring run's results as CSV bytes and a file name."""
    run = run_for(user, run_id)
    if run["kind"] != "infer":
        raise AppError("not_found", f"run {run_id} scores no file: it has no results.csv", status=404)
    if run["status"] != "succeeded":
        raise AppError("not_ready", f"run {run_id} is {run['status']}: its results come when it has succeeded.",
                       status=409, details={"status": run["status"]})
    return peers.storage().get_blob(run["result"]["results_sha256"]), f"run-{run_id}-results.csv"


def sweep_of(user, run_id: int) -> ml.Sweep:
    """A sweep's trials and the figures of its search, for whoever may see the run."""
    run_for(user, run_id)
    return peers.ml().sweep(run_id)


FIRST_MODEL_STALLED_S = 60


def first_model_status() -> dict | None:
    """While nothing serves: what the first-start job (runs by `system`) is doing, with its progress and ETA."""
    latest = peers.storage().list_runs(created_by="system", page_size=1)["results"]
    if not latest:
        return None
    run = latest[0]
    epochs = run.get("epochs") or []
    # collecting is the first 5 % of the way, training the rest
    share, offset = (0.05, 0.0) if run["kind"] == "collect" else (0.95, 0.05)
    status = {"run": run, "stage": "collecting the digits" if run["kind"] == "collect" else "training",
              "percent": round(100 * (offset + share * float(run["progress"]))), "eta_s": None,
              "failed": run["status"] in ("failed", "cancelled"), "stalled": False}
    if run["status"] == "succeeded":
        # the next step (training, then promotion) follows within seconds; much later, the job has stopped
        finished = datetime.fromisoformat(run["finished_at"].replace("Z", "+00:00"))
        status["stalled"] = (datetime.now(UTC) - finished).total_seconds() > FIRST_MODEL_STALLED_S
    if epochs and epochs[-1].get("eta_s") is not None:
        status["eta_s"] = round(epochs[-1]["eta_s"])
    return status


def page_of(listing: dict, filters: dict) -> dict:
    """Storage's page without its internal links."""
    page = int(filters.get("page", 1))
    return {
        "count": listing["count"],
        "page": page,
        "has_next": bool(listing.get("next")),
        "has_previous": bool(listing.get("previous")),
        "results": listing["results"],
    }


def datasets(params) -> gateway.DatasetPage:
    filters = checked_filters(params, DATASET_FILTERS)
    return page_of(peers.storage().list_datasets(**filters), filters)


def dataset(dataset_id: int) -> storage.Dataset:
    return peers.storage().get_dataset(dataset_id)


def model_versions(params) -> gateway.ModelVersionPage:
    filters = checked_filters(params, MODEL_FILTERS)
    return page_of(peers.storage().list_model_versions(**filters), filters)


def model_version(version_id: int) -> storage.ModelVersion:
    return peers.storage().get_model_version(version_id)


def evaluations(version_id: int, params) -> gateway.EvaluationPage:
    filters = checked_filters(params, ("page", "page_size"))
    return page_of(peers.storage().evaluations(version_id, **filters), filters)


def alias_ledger(params) -> gateway.AliasChangePage:
    filters = checked_filters(params, LEDGER_FILTERS)
    return page_of(peers.storage().alias_ledger(**filters), filters)


def latest(what: str, count: int) -> list:
    """The newest `count` datasets, model versions or alias moves, for a page's choices."""
    storage = peers.storage()
    listing = {"datasets": storage.list_datasets, "versions": storage.list_model_versions, "ledger": storage.alias_ledger}
    return listing[what](page_size=count)["results"]


def serving_version() -> storage.ModelVersion | None:
    return peers.storage().production_version()


def prediction_series(days: int) -> list[storage.DayOfPredictions]:
    return peers.storage().prediction_stats(days)["series"]


def comparison(baseline_id: int, candidate_id: int) -> ml.Comparison:
    return peers.ml().compare(baseline_id, candidate_id)


def architectures() -> ml.Architectures:
    return peers.ml().architectures()


def sources() -> collector.Sources:
    return peers.collector().sources()


def collector_log(limit: int) -> collector.RequestLog:
    return peers.collector().request_log(limit)


WEBHOOK_FILTERS = ("page", "page_size")
DELIVERY_FILTERS = ("webhook", "status", "page", "page_size")


def webhooks(params) -> gateway.WebhookPage:
    filters = checked_filters(params, WEBHOOK_FILTERS)
    return page_of(peers.storage().webhooks(**filters), filters)


def webhook_deliveries(params) -> gateway.DeliveryPage:
    filters = checked_filters(params, DELIVERY_FILTERS)
    return page_of(peers.storage().deliveries(**filters), filters)


def drift(version_id: int, days: int) -> storage.Drift:
    return peers.storage().drift(version_id, days)


def production_drift() -> storage.ProductionDay | None:
    """Today's drift of the production version (None while nothing serves, or nothing was asked today)."""
    return peers.storage().production_drift()["drift"]
