"""Writes to the domain database. Each function is one business operation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import time
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from kit import imagepack
from kit.errors import AppError
from kit.metrics import RUNS
from storage_svc.registry import events
from storage_svc.registry.blobs import delete_blob_file, write_blob_file
from storage_svc.registry.models import (
    Alias,
    AliasChange,
    Blob,
    Dataset,
    Evaluation,
    ModelVersion,
    Prediction,
    Report,
    Run,
    Sample,
)


def blob_store(*, data: bytes) -> Blob:
    """Store bytes once under their hash; the file is durable before the row exists."""
    if not data:
        raise AppError("empty_body", "A blob must not be empty.")
    sha256 = write_blob_file(data)
    blob, _ = Blob.objects.get_or_create(sha256=sha256, defaults={"size": len(data)})
    return blob


@transaction.atomic
def blob_delete_unreferenced(*, sha256: str) -> bool:
    """Delete a blob that nothing refers to (e.g. weights of a run that then failed, a superseded report). The row
    goes only once its bytes are gone: a store that fails keeps both, and the delete can be asked again."""
    blob = Blob.objects.select_for_update().filter(pk=sha256).first()
    if blob is None or any(refs.exists() for refs in (blob.datasets, blob.model_versions, blob.nearest_indexes, blob.reports)):
        return False
    delete_blob_file(sha256)
    blob.delete()
    return True


@transaction.atomic
def dataset_create(
    *, data: bytes, name: str, source: str, split: str, created_by: str, parent_ids: list[int] = (),
    meta: dict | None = None,
) -> Dataset:
    """Create an immutable dataset snapshot from an image pack; identical pixels share one blob."""
    if split not in Dataset.Split.values:
        raise AppError("invalid", f"split must be one of {', '.join(Dataset.Split.values)}", details={"split": split})
    if not name or not source:
        raise AppError("invalid", "name and source are required")
    try:
        images, labels = imagepack.unpack(data)
    except imagepack.ImagePackError as exc:
        raise AppError("invalid_dataset", str(exc)) from None
    if len(labels) == 0:
        raise AppError("invalid_dataset", "a dataset needs at least one image")
    run_id = (meta or {}).get("run_id")
    if run_id is not None:  # a worker that repeats a store whose answer it lost gets the dataset it already made
        Run.objects.select_for_update().filter(pk=run_id).first()  # one store per run at a time
        stored = Dataset.objects.filter(meta__run_id=run_id, sha256=hashlib.sha256(data).hexdigest()).first()
        if stored is not None:
            return stored
    counts = np.bincount(labels, minlength=10)
    blob = blob_store(data=data)
    dataset = Dataset.objects.create(
        name=name,
        source=source,
        split=split,
        num_samples=int(len(labels)),
        class_counts={str(digit): int(count) for digit, count in enumerate(counts)},
        sha256=blob.sha256,
        blob=blob,
        meta=meta or {},
        created_by=created_by,
    )
    if parent_ids:
        parents = list(Dataset.objects.filter(pk__in=parent_ids))
        if len(parents) != len(set(parent_ids)):
            raise AppError("not_found", "a parent dataset does not exist", status=404)
        dataset.parents.set(parents)
    return dataset


def run_create(*, kind: str, params: dict, created_by: str, parent_run: int | None = None) -> Run:
    if kind not in Run.Kind.values:
        raise AppError("invalid", f"kind must be one of {', '.join(Run.Kind.values)}")
    if parent_run is not None:
        parent = Run.objects.filter(pk=parent_run).first()
        if parent is None:
            raise AppError("not_found", f"run {parent_run} does not exist", status=404, details={"parent_run": parent_run})
        if parent.status in Run.FINISHED:  # a cancelled sweep starts no trial, however late the request
            raise AppError("run_finished", f"run {parent_run} already ended as {parent.status}", status=409,
                           details={"parent_run": parent_run})
    return Run.objects.create(kind=kind, params=params or {}, created_by=created_by, parent_run_id=parent_run)


_ALLOWED_MOVES = {
    Run.Status.QUEUED: {Run.Status.RUNNING, Run.Status.FAILED, Run.Status.CANCELLED},
    Run.Status.RUNNING: {Run.Status.RUNNING, *Run.FINISHED},
}
RUN_UPDATABLE_FIELDS = {"status", "progress", "message", "epochs", "result", "error", "heartbeat"}


@transaction.atomic
def run_update(*, run_id: int, changes: dict) -> Run:
    """Record progress or an outcome; a finished run never changes again."""
    unknown = set(changes) - RUN_UPDATABLE_FIELDS
    if unknown:
        raise AppError("invalid", f"unknown fields: {', '.join(sorted(unknown))}")
    run = Run.objects.select_for_update().filter(pk=run_id).first()
    if run is None:
        raise AppError("not_found", f"run {run_id} does not exist", status=404)
    if run.status in Run.FINISHED:
        raise AppError("run_finished", f"run {run_id} already ended as {run.status}", status=409)
    now = timezone.now()
    new_status = changes.get("status", run.status)
    if new_status != run.status and new_status not in _ALLOWED_MOVES.get(run.status, set()):
        raise AppError("invalid_transition", f"a {run.status} run cannot become {new_status}", status=409)
    if new_status == Run.Status.RUNNING and run.started_at is None:
        run.started_at = now
    if new_status in Run.FINISHED:
        run.finished_at = now
        RUNS.labels(run.kind, new_status).inc()
        if new_status == Run.Status.SUCCEEDED:
            run.progress = 1.0
    run.status = new_status
    if "progress" in changes:
        progress = float(changes["progress"])
        if not 0.0 <= progress <= 1.0:
            raise AppError("invalid", "progress must be between 0 and 1")
        run.progress = progress
    for field in ("message", "epochs", "result", "error"):
        if field in changes:
            setattr(run, field, changes[field])
    run.message = run.message[:300]
    run.heartbeat_at = now
    run.save()
    if new_status in Run.FINISHED:
        events.emit("run.finished", run_event(run))
    if new_status == Run.Status.CANCELLED:  # a sweep's queued and running trials stop with it
        run.children.filter(status__in=(Run.Status.QUEUED, Run.Status.RUNNING)).update(
            status=Run.Status.CANCELLED, message=f"cancelled with run {run.id}", finished_at=now, heartbeat_at=now)
    return run


def run_event(run: Run) -> dict:
    return {"run": {"id": run.id, "kind": run.kind, "status": run.status, "created_by": run.created_by,
                    "error": run.error[:500], "result": run.result}}


STARTED_AT = timezone.now()


EXPIRY_EVERY_S = 1.0  # reading runs checks for stale ones at most this often per process
_expiry_checked_at = [float("-inf")]


def runs_expire_stale_now_and_then() -> int:
    """`runs_expire_stale`, at most every EXPIRY_EVERY_S: run readers (a page's runs, every watcher of a run's event
    stream polling each second) share one check instead of four queries each; the timeouts it applies are 20 s
    and more, so a second's delay changes nothing a watcher sees."""
    now = time.monotonic()
    if now - _expiry_checked_at[0] < EXPIRY_EVERY_S:
        return 0
    _expiry_checked_at[0] = now
    return runs_expire_stale()


def runs_expire_stale() -> int:
    """End as failed, saying why, the runs nobody works on: running ones whose worker stopped reporting, and
    queued ones no worker started in time. Returns how many."""
    now = timezone.now()
    heartbeat, queue = settings.RUN_HEARTBEAT_TIMEOUT_S, settings.RUN_QUEUE_TIMEOUT_S
    reasons = {
        Run.Status.RUNNING: (
            Q(heartbeat_at__lt=now - timedelta(seconds=heartbeat)),
            f"no word from the ML worker for {heartbeat} s: it stopped, or could not reach storage_svc to report "
            "(see the ml worker's log). Start the run again.",
        ),
        Run.Status.QUEUED: (
            Q(created_at__lt=now - timedelta(seconds=queue)),
            f"no ML worker started this run within {queue} s: check that a worker runs (`ml_worker`) and reaches "
            "storage_svc, then start the run again.",
        ),
    }
    if (now - STARTED_AT).total_seconds() < heartbeat:
        # A storage process that has just (re)started has not heard from the workers yet: give them one timeout.
        del reasons[Run.Status.RUNNING]
    expired = 0
    # A sweep lives while any of its trials does, or ended within a timeout (with one worker, no tick of the sweep
    # runs while a trial trains: the trial's end moves it on); a trial waits its turn while its sweep runs.
    alive = Q(children__status__in=(Run.Status.QUEUED, Run.Status.RUNNING)) | Q(
        children__finished_at__gte=now - timedelta(seconds=heartbeat))
    waiting_its_turn = Q(status=Run.Status.QUEUED, parent_run__status=Run.Status.RUNNING)
    for status, (too_old, reason) in reasons.items():
        stale = Run.objects.filter(too_old, status=status).exclude(pk__in=Run.objects.filter(alive).values("pk"))
        stale = list(stale.exclude(waiting_its_turn).values_list("id", flat=True))
        count = Run.objects.filter(pk__in=stale, status=status).update(
            status=Run.Status.FAILED, error=reason, message="failed", finished_at=now)
        for run in Run.objects.filter(pk__in=stale, status=Run.Status.FAILED, finished_at=now):
            RUNS.labels(run.kind, Run.Status.FAILED).inc()
            events.emit("run.finished", run_event(run))
        expired += count
    return expired


@transaction.atomic
def model_version_create(
    *,
    architecture: str,
    hyperparameters: dict,
    dataset_ids: list[int],
    weights_sha256: str,
    metrics: dict,
    parameter_count: int,
    created_by: str,
    base_version_id: int | None = None,
    run_id: int | None = None,
    note: str = "",
    nearest_index_sha256: str | None = None,
) -> ModelVersion:
    if run_id is not None:  # a worker that repeats a registration whose answer it lost gets the same version
        Run.objects.select_for_update().filter(pk=run_id).first()  # one registration per run at a time
        registered = ModelVersion.objects.filter(run_id=run_id, weights_id=weights_sha256).first()
        if registered is not None:
            return registered
    weights = Blob.objects.filter(pk=weights_sha256).first()
    if weights is None:
        raise AppError("not_found", f"weights blob {weights_sha256} is not stored", status=404)
    nearest_index = None
    if nearest_index_sha256 is not None:
        nearest_index = Blob.objects.filter(pk=nearest_index_sha256).first()
        if nearest_index is None:
            raise AppError("not_found", f"nearest-examples index blob {nearest_index_sha256} is not stored", status=404)
    datasets = list(Dataset.objects.filter(pk__in=dataset_ids))
    if len(datasets) != len(set(dataset_ids)):
        raise AppError("not_found", "a dataset of this version does not exist", status=404)
    version = ModelVersion.objects.create(
        architecture=architecture,
        hyperparameters=hyperparameters,
        metrics=metrics,
        weights=weights,
        nearest_index=nearest_index,
        parameter_count=parameter_count,
        created_by=created_by,
        base_version_id=base_version_id,
        run_id=run_id,
        note=note,
    )
    version.datasets.set(datasets)
    events.emit("version.registered", {"version": {
        "id": version.id, "version": version.version, "architecture": version.architecture,
        "accuracy": (metrics or {}).get("accuracy"), "run": run_id, "created_by": created_by}})
    return version


@transaction.atomic
def alias_set(*, name: str, model_version_id: int, actor: str, reason: str, action: str = AliasChange.Action.MOVE,
              details: dict | None = None) -> Alias:
    """Point an alias at a version and append the move to the ledger (`action` override: a promotion the gate
    refused, with its figures in `details`). A new candidate starts without canary traffic, and so does a candidate
    promoted to production."""
    if name not in Alias.Name.values:
        raise AppError("invalid", f"alias must be one of {', '.join(Alias.Name.values)}")
    if action not in (AliasChange.Action.MOVE, AliasChange.Action.OVERRIDE):
        raise AppError("invalid", "action must be move or override", details={"action": action})
    version = ModelVersion.objects.filter(pk=model_version_id).first()
    if version is None:
        raise AppError("not_found", f"model version {model_version_id} does not exist", status=404)
    alias = Alias.objects.select_for_update().filter(name=name).first()
    previous = alias.model_version if alias else None
    if previous == version:  # already there: no move, no ledger row, no event
        return alias
    if alias is None:
        alias = Alias(name=name)
    details = dict(details or {})
    if name == Alias.Name.CANDIDATE and alias.traffic_share and previous != version:
        details["canary"] = {"from": alias.traffic_share, "to": 0.0}
        alias.traffic_share = 0.0
    alias.model_version = version
    alias.save()
    if name == Alias.Name.PRODUCTION:
        candidate = Alias.objects.select_for_update().filter(name=Alias.Name.CANDIDATE, model_version=version).first()
        if candidate is not None and candidate.traffic_share:
            details["canary"] = {"from": candidate.traffic_share, "to": 0.0}
            candidate.traffic_share = 0.0
            candidate.save(update_fields=["traffic_share", "updated_at"])
    change = AliasChange.objects.create(
        alias=name, from_version=previous, to_version=version, actor=actor, reason=reason, action=action,
        details=details,
    )
    events.emit("alias.moved", alias_event(change))
    return alias


def alias_event(change: AliasChange) -> dict:
    return {"alias": change.alias, "action": change.action, "from_version": change.from_version_id,
            "to_version": change.to_version_id, "actor": change.actor, "reason": change.reason,
            "ledger_id": change.id}


def decode_image_field(value: str, *, field: str, exact_size: int | None = None, max_size: int) -> bytes:
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise AppError("invalid", f"{field} must be base64", details={field: "not base64"}) from None
    if exact_size is not None and len(data) != exact_size:
        raise AppError("invalid", f"{field} must hold {exact_size} bytes", details={field: "wrong size"})
    if len(data) > max_size:
        raise AppError("invalid", f"{field} is larger than {max_size} bytes", details={field: "too large"})
    return data


def prediction_rows(items: object) -> list[dict]:
    """Check a bulk of predictions field by field (the hot history path: no serializer per row)."""
    if not isinstance(items, list) or not 1 <= len(items) <= 1000:
        raise AppError("invalid", "predictions must be a list of 1 to 1000 items", details={"predictions": "required"})
    problems: dict[str, str] = {}
    for n, item in enumerate(items):
        where = f"predictions[{n}]"
        if not isinstance(item, dict):
            problems[where] = "must be an object"
            continue
        unknown = set(item) - PREDICTION_ROW_FIELDS
        if unknown:
            problems[where] = f"unknown fields: {', '.join(sorted(unknown))}"
        checks = {
            "image_b64": isinstance(item.get("image_b64"), str),
            "digit": _is_int(item.get("digit")) and 0 <= item["digit"] <= 9,
            "probabilities": isinstance(item.get("probabilities"), list) and len(item["probabilities"]) == 10
            and all(_is_number(p) and 0.0 <= p <= 1.0 for p in item["probabilities"]),
            "model_version_id": _is_int(item.get("model_version_id")),
            "latency_ms": _is_number(item.get("latency_ms")) and item["latency_ms"] >= 0,
            "user": isinstance(item.get("user"), str) and 0 < len(item["user"]) <= 150,
            "raw_image_b64": item.get("raw_image_b64") is None or isinstance(item["raw_image_b64"], str),
            "request_key": item.get("request_key") is None
            or (isinstance(item["request_key"], str) and 0 < len(item["request_key"]) <= 64),
            "run_id": item.get("run_id") is None or _is_int(item["run_id"]),
            "shadow": item.get("shadow") is None or _is_shadow(item["shadow"]),
        }
        problems.update({f"{where}.{name}": "missing or not valid" for name, ok in checks.items() if not ok})
    if problems:
        raise AppError("invalid", "The request is not valid.", details=problems)
    return items


PREDICTION_ROW_FIELDS = {"image_b64", "raw_image_b64", "digit", "probabilities", "model_version_id", "latency_ms",
                         "user", "request_key", "run_id", "shadow"}


def _is_shadow(value) -> bool:
    """The candidate's answer beside production's: {"model_version_id", "digit", "confidence"}."""
    return (isinstance(value, dict) and set(value) == {"model_version_id", "digit", "confidence"}
            and _is_int(value["model_version_id"]) and _is_int(value["digit"]) and 0 <= value["digit"] <= 9
            and _is_number(value["confidence"]) and 0.0 <= value["confidence"] <= 1.0)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@transaction.atomic
def predictions_create_bulk(*, items: list[dict]) -> list[tuple[int, datetime]]:
    """Several answered predictions in one transaction: all are recorded, or none; each one's (id, created_at), in
    order. Items with a `request_key` already recorded (a retried batch) are not recorded twice: the stored row's id
    and time are returned.

    The history's hot write: one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` (no model instances; a second
    query only for keys already there)."""
    _check_versions_exist({item["model_version_id"] for item in items}
                          | {item["shadow"]["model_version_id"] for item in items if item.get("shadow")})
    runs = {item["run_id"] for item in items if item.get("run_id") is not None}
    if runs and Run.objects.filter(pk__in=runs).count() != len(runs):
        raise AppError("not_found", f"runs {sorted(runs)}: not every one exists", status=404)
    keys = [item.get("request_key") for item in items]
    if any(keys) and (not all(keys) or len(set(keys)) != len(keys)):
        raise AppError("invalid", "request_key must be given for every item of a bulk, once each")
    now = timezone.now()
    at = connection.ops.adapt_datetimefield_value(now)
    rows = [
        (decode_image_field(item["image_b64"], field="image", exact_size=784, max_size=784),
         _kept_raw(item.get("raw_image_b64")), item["digit"], json.dumps(item["probabilities"]),
         max(item["probabilities"]), item["model_version_id"], item["latency_ms"], item["user"], at,
         item.get("request_key"), item.get("run_id"), *_shadow_columns(item.get("shadow")))
        for item in items
    ]
    with transaction.atomic():
        return _insert_history(rows, keys, now)


_versions_seen: set[int] = set()  # model versions are never deleted: one seen to exist always will


def _check_versions_exist(version_ids: set[int]) -> None:
    unseen = version_ids - _versions_seen
    if not unseen:
        return
    found = set(ModelVersion.objects.filter(pk__in=unseen).values_list("pk", flat=True))
    _versions_seen.update(found)
    if unseen - found:
        raise AppError("not_found", f"model versions {sorted(unseen - found)} do not exist", status=404)


def _insert_history(rows: list[tuple], keys: list[str | None], now: datetime) -> list[tuple[int, datetime]]:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in _HISTORY_COLUMNS)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(_HISTORY_COLUMNS)) + ")"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Prediction._meta.db_table)} ({columns}) VALUES {placeholders} "
            "ON CONFLICT (request_key) DO NOTHING RETURNING id, request_key",
            [value for row in rows for value in row])
        inserted = cursor.fetchall()
        if not any(keys):
            # Every row is new; one statement takes its ids in the order of its VALUES (RETURNING's order is not
            # promised).
            stored = [(pk, now) for pk in sorted(pk for pk, _ in inserted)]
        else:
            by_key = {key: (pk, now) for pk, key in inserted}
            if len(by_key) < len(keys):  # a retried batch: some rows were recorded by an earlier try
                by_key.update((key, (pk, created)) for key, pk, created in Prediction.objects.filter(
                    request_key__in=set(keys) - set(by_key)).values_list("request_key", "id", "created_at"))
            stored = [by_key[key] for key in keys]
    _keep_newest_raw_images({row[7] for row in rows if row[1] is not None})  # (user, raw image) of the row
    return stored


_HISTORY_COLUMNS = ("image", "raw_image", "digit", "probabilities", "confidence", "model_version_id", "latency_ms",
                    "user", "created_at", "request_key", "run_id", "shadow_version_id", "shadow_digit", "shadow_confidence")


def _shadow_columns(shadow: dict | None) -> tuple:
    if not shadow:
        return None, None, None
    return shadow["model_version_id"], shadow["digit"], shadow["confidence"]


def _kept_raw(raw_image_b64: str | None) -> bytes | None:
    """The uploaded drawing's bytes when they are within the size kept (`raw_image_max_bytes`), else None."""
    if not raw_image_b64:
        return None
    raw = decode_image_field(raw_image_b64, field="raw_image", max_size=2 * 1024 * 1024)
    return raw if len(raw) <= settings.RAW_IMAGE_MAX_BYTES else None


def _keep_newest_raw_images(users: set[str]) -> None:
    """Only each user's newest `raw_images_per_user` predictions keep their drawing's bytes (a partial index
    holds just the rows with bytes, so this reads at most that many and the new ones)."""
    keep = settings.RAW_IMAGES_PER_USER
    for user in sorted(users):  # one order for every batch: no deadlock between two of them
        with_raw = Prediction.objects.filter(user=user, raw_image__isnull=False)
        if keep > 0:  # older than the user's keep-th newest; nothing while there are fewer (the subquery is NULL)
            with_raw = with_raw.filter(id__lt=Subquery(with_raw.order_by("-id").values("id")[keep - 1:keep]))
        with_raw.update(raw_image=None)


def predictions_prune(*, older_than_days: int, chunk: int = 1000) -> int:
    """Delete predictions older than that many days, `chunk` at a time (each its own short transaction, and only
    ids in memory); their samples (corrections) stay. How many went."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted = 0
    while ids := list(Prediction.objects.filter(created_at__lt=cutoff).order_by("id").values_list("id", flat=True)[:chunk]):
        with transaction.atomic():  # the samples' link is set to NULL by the delete (on_delete=SET_NULL)
            Prediction.objects.filter(id__in=ids).only("id").delete()
        deleted += len(ids)
    return deleted


def sample_create(*, image_b64: str, label: int, user: str, prediction_id: int | None = None) -> Sample:
    """A labelled 28x28 user image, pending review."""
    image = decode_image_field(image_b64, field="image", exact_size=28 * 28, max_size=784)
    return Sample.objects.create(image=image, label=label, user=user, prediction_id=prediction_id)


@transaction.atomic
def samples_bulk_create(*, samples: list[dict]) -> list[Sample]:
    """Several labelled 28x28 images pending review, all or none (the error browser's 'send to review')."""
    rows = [Sample(image=decode_image_field(s["image_b64"], field=f"samples[{n}].image_b64", exact_size=784, max_size=784),
                   label=s["label"], user=s["user"]) for n, s in enumerate(samples)]
    return Sample.objects.bulk_create(rows)


@transaction.atomic
def prediction_feedback(*, prediction_id: int, label: int, user: str) -> Sample:
    """Record the right label on a prediction and queue its image for review."""
    prediction = Prediction.objects.select_for_update().filter(pk=prediction_id).first()
    if prediction is None:
        raise AppError("not_found", f"prediction {prediction_id} does not exist", status=404)
    prediction.corrected_label = label
    prediction.save(update_fields=["corrected_label"])
    existing = Sample.objects.filter(prediction=prediction, status=Sample.Status.PENDING).first()
    if existing is not None:
        # A second correction before review replaces the label instead of queueing twice.
        existing.label = label
        existing.save(update_fields=["label"])
        return existing
    return Sample.objects.create(image=prediction.image, label=label, user=user, prediction=prediction)


@transaction.atomic
def sample_review(*, sample_id: int, status: str, reviewer: str) -> Sample:
    if status not in (Sample.Status.ACCEPTED, Sample.Status.REJECTED):
        raise AppError("invalid", "status must be accepted or rejected", details={"status": status})
    sample = Sample.objects.select_for_update().filter(pk=sample_id).first()
    if sample is None:
        raise AppError("not_found", f"sample {sample_id} does not exist", status=404)
    sample.status = status
    sample.reviewed_by = reviewer
    sample.reviewed_at = timezone.now()
    sample.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    return sample


def samples_pack(*, status: str) -> bytes:
    """All samples with `status`, oldest first, as an image pack."""
    rows = list(Sample.objects.filter(status=status).order_by("id").values_list("image", "label"))
    images = np.frombuffer(b"".join(bytes(image) for image, _ in rows), dtype=np.uint8).reshape(-1, 28, 28)
    labels = np.array([label for _, label in rows], dtype=np.uint8)
    return imagepack.pack(images, labels)


def model_version_annotate(*, version_id: int, note: str) -> ModelVersion:
    """The one thing that may change on a version: the engineers' note."""
    updated = ModelVersion.objects.filter(pk=version_id).update(note=note)
    if not updated:
        raise AppError("not_found", f"model version {version_id} does not exist", status=404)
    return ModelVersion.objects.get(pk=version_id)


def evaluation_create(*, version_id: int, dataset_id: int, run_id: int | None, metrics: dict,
                      created_by: str) -> Evaluation:
    """Record what a version scored on a dataset (the evaluate scenario's result)."""
    if not ModelVersion.objects.filter(pk=version_id).exists():
        raise AppError("not_found", f"model version {version_id} does not exist", status=404)
    if not Dataset.objects.filter(pk=dataset_id).exists():
        raise AppError("not_found", f"dataset {dataset_id} does not exist", status=404)
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first() if run_id else None
        if run is not None:  # a worker repeating the write (a retry, a re-run task) gets the evaluation it made
            made = Evaluation.objects.filter(run=run, model_version_id=version_id, dataset_id=dataset_id).first()
            if made is not None:
                return made
        return Evaluation.objects.create(model_version_id=version_id, dataset_id=dataset_id, metrics=metrics,
                                         run=run, created_by=created_by)


def report_store(*, version_id: int, kind: str, input_sha256: str, data: bytes) -> Report:
    if not ModelVersion.objects.filter(pk=version_id).exists():
        raise AppError("not_found", f"model version {version_id} does not exist", status=404)
    blob = blob_store(data=data)
    # The reports this one supersedes (the same version and kind, made from other data) go, with their files. Two
    # stores of one version take turns (its row locked), so that each does not delete the other's: the last wins.
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(pk=version_id).first()
        report, _ = Report.objects.get_or_create(
            model_version_id=version_id, kind=kind, input_sha256=input_sha256, defaults={"blob": blob}
        )
        superseded = Report.objects.filter(model_version_id=version_id, kind=kind).exclude(pk=report.pk)
        old_blobs = set(superseded.values_list("blob_id", flat=True)) - {report.blob_id}
        superseded.delete()
    for sha256 in old_blobs:
        blob_delete_unreferenced(sha256=sha256)
    return report
