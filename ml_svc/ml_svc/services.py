"""Starting jobs: a request checked against what exists (dataset, version, source, accepted samples), recorded as a
queued run in storage and handed to the task queue (jobs.py runs it). Views parse the request and call these."""

from __future__ import annotations

from django.conf import settings

from kit.contracts import storage
from kit.errors import AppError
from ml_svc import jobs, peers
from ml_svc.architectures import FINE_TUNE_HYPERPARAMETERS, get_architecture, validate_hyperparameters, validate_values


def _enqueued(run: storage.Run, job) -> storage.Run:
    try:
        job.enqueue(run["id"])
    except Exception as exc:  # the queue's database failed: the run must not stay queued forever
        peers.storage().update_run(run["id"], status="failed", error=f"could not queue the job: {exc}")
        raise AppError("queue_unavailable", "The job queue is unavailable.", status=503) from None
    return run


def start_training(*, dataset_id: int, architecture: str | None, hyperparameters: dict, created_by: str) -> storage.Run:
    chosen = get_architecture(architecture or settings.DEFAULT_ARCHITECTURE)
    hp = validate_hyperparameters(chosen, hyperparameters)
    # The run keeps what was asked for (checked); the worker fills in the defaults, and a time-budgeted training
    # chooses what was left open (its version records every value).
    asked = {name: hp[name] for name in hyperparameters}
    peers.storage().get_dataset(dataset_id)  # 404 if it does not exist
    run = peers.storage().create_run(
        kind="train", params={"dataset_id": dataset_id, "architecture": chosen.name, "hyperparameters": asked},
        created_by=created_by,
    )
    return _enqueued(run, jobs.train_model)


def start_fine_tune(*, base_model_id: int, hyperparameters: dict, created_by: str) -> storage.Run:
    hp = validate_values(FINE_TUNE_HYPERPARAMETERS, hyperparameters)
    base = peers.storage().get_model_version(base_model_id)  # 404 if it does not exist
    if peers.storage().list_samples(status="accepted", page_size=1)["count"] == 0:
        raise AppError("no_user_samples", "There are no accepted user samples to fine-tune on: review some first.")
    run = peers.storage().create_run(
        kind="fine-tune", params={"base_model_id": base["id"], "hyperparameters": hp}, created_by=created_by
    )
    return _enqueued(run, jobs.fine_tune_model)


def start_evaluation(*, model_id: int, dataset_id: int, created_by: str) -> storage.Run:
    peers.storage().get_model_version(model_id)  # 404 if it does not exist
    peers.storage().get_dataset(dataset_id)  # 404 if it does not exist
    run = peers.storage().create_run(kind="evaluate", params={"model_id": model_id, "dataset_id": dataset_id},
                                     created_by=created_by)
    return _enqueued(run, jobs.evaluate_version)


def start_collect(*, source: str, split: str, created_by: str, upload: str | None = None, **params) -> storage.Run:
    """`params`: batch_size, max_samples, validation_fraction, split_seed (checked by the view); `upload`: the id
    of a collector upload, for the `upload` source."""
    if source == UPLOAD_SOURCE:
        checked_upload(upload, purpose="dataset")
        run = peers.storage().create_run(kind="collect", params={"source": source, "split": "train", "upload": upload,
                                                                 **params}, created_by=created_by)
        return _enqueued(run, jobs.collect_dataset)
    sources = {s["source"]: s for s in peers.collector().sources()["sources"]}
    if source not in sources:
        raise AppError(
            "unknown_source", f"unknown source {source!r}; known: {', '.join(sorted(sources))}",
            status=404, details={"source": source},
        )
    splits = sources[source]["splits"]
    if split not in splits:
        raise AppError(
            "unknown_split", f"{source} has splits {', '.join(splits) or '(none available)'}", details={"split": split},
        )
    # The one source that can be empty: say so now rather than queue a run that can only fail.
    if source == "user" and not peers.collector().source("user")["splits"][split]["count"]:
        raise AppError("empty_source", "There are no accepted user samples to collect yet: accept some in the "
                       "review queue first.", status=409, details={"source": "user"})
    run = peers.storage().create_run(kind="collect", params={"source": source, "split": split, **params},
                                     created_by=created_by)
    return _enqueued(run, jobs.collect_dataset)


UPLOAD_SOURCE = "upload"


def checked_upload(upload: str | None, *, purpose: str) -> dict:
    if not upload:
        raise AppError("invalid", "upload (the id of an uploaded file) is required.", details={"upload": "required"})
    described = peers.collector().get_upload(upload)  # 404 if it is not there
    if described["purpose"] != purpose:
        raise AppError("invalid", f"upload {upload} was uploaded to {described['purpose']}, not to {purpose}.",
                       details={"upload": upload})
    return described


def start_infer(*, upload: str, model_id: int | None, created_by: str) -> storage.Run:
    """Score an uploaded file's images with a version (production's when none is named), as a run."""
    described = checked_upload(upload, purpose="score")
    if model_id is None:
        production = peers.storage().production_version()
        if production is None:
            raise AppError("no_production_model", "No model serves yet: name a model_id.", status=409)
        model_id = production["id"]
    else:
        peers.storage().get_model_version(model_id)  # 404 if it does not exist
    run = peers.storage().create_run(kind="infer", params={
        "upload": upload, "model_id": model_id,
        "file": described["files"][0]["name"], "count": described["count"], "labelled": described["labelled"],
    }, created_by=created_by)
    return _enqueued(run, jobs.infer_file)


def start_sweep(*, dataset_id: int, architecture: str | None, search_space: dict, trials: int, max_parallel: int,
                time_budget_s: int, hyperparameters: dict, seed: int, created_by: str) -> storage.Run:
    """A sweep run: its study created, its first trials started by the first tick."""
    from ml_svc import sweeps

    chosen = get_architecture(architecture or settings.DEFAULT_ARCHITECTURE)
    sweeps.distributions(chosen.name, search_space)  # 400 naming the field
    fixed = validate_hyperparameters(chosen, hyperparameters)
    fixed = {name: fixed[name] for name in hyperparameters}
    overlap = set(fixed) & set(search_space)
    if overlap:
        raise AppError("invalid_search_space", f"{', '.join(sorted(overlap))}: searched and fixed at once",
                       details={f"hyperparameters.{name}": "also in search_space" for name in sorted(overlap)})
    peers.storage().get_dataset(dataset_id)  # 404 if it does not exist
    run = peers.storage().create_run(kind="sweep", created_by=created_by, params={
        "dataset_id": dataset_id, "architecture": chosen.name, "search_space": search_space, "trials": trials,
        "max_parallel": max_parallel, "time_budget_s": time_budget_s, "hyperparameters": fixed, "seed": seed,
    })
    sweeps.create_study(run["id"])
    return _enqueued(run, jobs.sweep_tick)
