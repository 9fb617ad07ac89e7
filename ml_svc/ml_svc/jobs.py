"""Long scenarios, run by the task-queue worker (`manage.py db_worker`), never in a web process.

Each job records its progress, heartbeat and outcome on its Run in storage_svc.
A progress update that storage refuses because the run was cancelled stops the job.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from django.conf import settings
from django_tasks import task
from torch import nn

from kit import imagepack
from kit.errors import AppError, PeerUnavailable
from ml_svc import nearest, peers, strokes, sweeps
from ml_svc.architectures import (
    FINE_TUNE_HYPERPARAMETERS,
    get_architecture,
    parameter_count,
    validate_hyperparameters,
    validate_values,
)
from ml_svc.evaluation import (
    SplitData,
    compare,
    dataset_split,
    evaluate_with_images,
    held_out_dataset_id,
    metrics_of,
    metrics_with_images,
    predict_proba,
    stratified_split,
)
from ml_svc.serving import LoadedModel, load_model_version, model_cache
from ml_svc.training import TrainingCancelled, canvas_pen, fit_to_budget, train
from ml_svc.weights import weights_to_bytes

logger = logging.getLogger(__name__)
T = TypeVar("T")


# A progress write is tried again only briefly while storage_svc is away (the next one carries the news); the
# start and the outcome of a run over settings.STORAGE_RETRY_WINDOW_S, so that a restart of storage costs no run.
PROGRESS_RETRY_S = 2.0


def unavailable(exc: AppError) -> bool:
    """storage_svc is away: unreachable, failing, or without its database for a moment (a 503)."""
    return isinstance(exc, PeerUnavailable) or exc.status == 503


def persistently(call: Callable[[], T], *, what: str, window_s: float | None = None) -> T:
    """`call()`, tried again while storage_svc is unavailable, for up to `window_s` seconds (by default
    settings.STORAGE_RETRY_WINDOW_S); its 4xx are final."""
    deadline = time.monotonic() + (settings.STORAGE_RETRY_WINDOW_S if window_s is None else window_s)
    delay = 0.25
    while True:
        try:
            return call()
        except AppError as exc:
            if not unavailable(exc) or time.monotonic() + delay > deadline:
                raise
            logger.warning("%s: %s; trying again in %.2f s", what, exc.message, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class RunReporter:
    """Writes a run's progress to storage; raises TrainingCancelled once the run was cancelled."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.epochs: list[dict] = []
        self.furthest = 0.0  # progress recorded so far

    def update(self, *, window_s: float | None = None, **fields) -> None:
        try:
            persistently(lambda: peers.storage().update_run(self.run_id, **fields), window_s=window_s,
                         what=f"run {self.run_id}: recording {', '.join(sorted(fields))}")
        except AppError as exc:
            if exc.status != 409:
                raise
            if "status" in fields and peers.storage().get_run(self.run_id)["status"] == fields["status"]:
                return  # an outcome written before, whose answer was lost: the retry found it recorded
            raise TrainingCancelled(exc.message) from None

    def progress(self, fraction: float, message: str, epoch: dict | None = None) -> None:
        """Record progress; while storage is away it is skipped (the next write carries all epochs)."""
        if epoch is not None:
            self.epochs.append(epoch)
        # never backwards (a time budget re-planned may lower done/total): watchers see progress only grow
        self.furthest = max(self.furthest, round(min(fraction, 0.999), 4))
        fields = {"progress": self.furthest, "message": message}
        if self.epochs:
            fields["epochs"] = self.epochs
        try:
            self.update(window_s=PROGRESS_RETRY_S, **fields)
        except AppError as exc:
            if not unavailable(exc):
                raise
            logger.warning("run %s: progress not recorded (%s); the next write carries it", self.run_id, exc.message)


HEARTBEAT_EVERY_S = 5.0  # well within storage's run_heartbeat_timeout_s (20 s)


class Heartbeat(threading.Thread):
    """Tells storage the run is alive every HEARTBEAT_EVERY_S while its body works, whatever the body does between
    progress reports (a long evaluation, a comparison, a batch of large images, a CPU starved by predictions);
    only a dead worker goes silent. Stops when told, or when storage answers that the run ended."""

    def __init__(self, run_id: int):
        super().__init__(name=f"heartbeat-{run_id}", daemon=True)
        self.run_id = run_id
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_EVERY_S):
            try:
                peers.storage().update_run(self.run_id, heartbeat=True)
            except AppError as exc:
                if exc.status == 409:
                    return  # cancelled: the body stops at its next report
                logger.warning("run %s: heartbeat not recorded (%s)", self.run_id, exc.message)


def run_scenario(run_id: int, body: Callable[[RunReporter, dict], dict]) -> dict | None:
    """Mark the run running, execute `body` (with a heartbeat beside it), and record success or failure."""
    torch.set_num_threads(settings.WORKER_TORCH_THREADS)
    storage = peers.storage()
    reporter = RunReporter(run_id)
    try:
        run = persistently(lambda: storage.get_run(run_id), what=f"run {run_id}: reading it")
        reporter.update(status="running", message="started")
    except TrainingCancelled:
        return None
    except AppError as exc:
        if not unavailable(exc):
            raise
        # Nothing can be recorded: storage marks the run failed once it has waited run_queue_timeout_s.
        logger.error("run %s could not start: %s", run_id, exc.message)
        return None
    heartbeat = Heartbeat(run_id)
    heartbeat.start()
    try:
        result = body(reporter, run)
    except TrainingCancelled:
        logger.info("run %s was cancelled", run_id)
        return None
    except Exception as exc:  # the run must end failed whatever went wrong
        logger.exception("run %s failed", run_id)
        message = exc.message if isinstance(exc, AppError) else f"{exc.__class__.__name__}: {exc}"
        try:
            reporter.update(status="failed", error=message, message="failed")
        except (AppError, TrainingCancelled):
            logger.error("could not record the failure of run %s:\n%s", run_id, traceback.format_exc())
        return None
    finally:
        heartbeat.done.set()
    try:
        reporter.update(status="succeeded", result=result, message="done")
    except (AppError, TrainingCancelled) as exc:
        # Storage ends the run as failed once its heartbeat is older than run_heartbeat_timeout_s, saying why.
        logger.error("run %s: its outcome could not be recorded: %s", run_id, exc)
        return None
    return result


def collect_body(reporter: RunReporter, run: dict) -> dict:
    """Pull batches from the collector and store them as one immutable dataset."""
    params = run["params"]
    source, split = params["source"], params.get("split", "train")
    batch_size, limit = int(params["batch_size"]), params.get("max_samples")
    if source == "upload":
        all_images, all_labels, lineage, name = _uploaded_images(reporter, params["upload"], limit)
    else:
        info = peers.collector().source(source)
        total = info["splits"][split]["count"]
        wanted = min(total, int(limit)) if limit else total
        images, labels, offset = [], [], 0
        while offset is not None and offset < wanted:
            batch_images, batch_labels, offset = peers.collector().batch(
                source=source, split=split, size=min(batch_size, wanted - offset), offset=offset
            )
            images.append(batch_images)
            labels.append(batch_labels)
            done = sum(len(b) for b in labels)
            reporter.progress(0.9 * done / wanted, f"collected {done} of {wanted} images")
        all_images, all_labels = np.concatenate(images), np.concatenate(labels)
        # Lineage: exactly which source data this snapshot was taken from.
        lineage = {"source": source, "split": split, "source_sha256": info["splits"][split].get("sha256"),
                   "first": int(len(all_labels)), "of": int(total)}
        name = f"{source}-{split}" + (f"-first{wanted}" if wanted < total else "")
    data = imagepack.pack(all_images, all_labels)
    meta = {"lineage": lineage, "run_id": run["id"]}  # storage answers a repeated store of this run's pixels alike
    if split == "train":
        fraction, seed = float(params.get("validation_fraction", 0.1)), int(params.get("split_seed", 0))
        train_idx, val_idx = stratified_split(all_labels, fraction, seed)
        meta["validation"] = {"fraction": fraction, "seed": seed, "train": int(len(train_idx)), "validation": int(len(val_idx))}
    reporter.progress(0.92, f"storing {len(all_labels)} images")
    dataset = persistently(
        lambda: peers.storage().create_dataset(data, name=name, source=source, split=split,
                                               created_by=run["created_by"], meta=meta),
        what="storing the dataset",
    )
    if source == "upload":
        _forget_upload(params["upload"])
    return {"dataset_id": dataset["id"], "num_samples": dataset["num_samples"], "sha256": dataset["sha256"]}


UPLOAD_BATCH = 500  # images decoded per request to the collector: a progress step, and well within its timeout


def _upload_items(reporter: RunReporter, upload: dict, wanted: int, doing: str, share: float):
    """An upload's items, a batch at a time, with progress up to `share` of the run."""
    offset = 0
    while offset is not None and offset < wanted:
        batch = peers.collector().upload_batch(upload["id"], offset=offset, size=min(UPLOAD_BATCH, wanted - offset))
        items = batch["items"]
        yield offset, items
        offset = batch["next_offset"]
        done = min(offset or wanted, wanted)
        reporter.progress(share * done / wanted, f"{doing} {done} of {wanted} images")


def _uploaded_images(reporter: RunReporter, upload_id: str, limit: int | None):
    """An uploaded dataset's canonical images and labels, its lineage and name; an unreadable image fails the run
    (naming it) before anything is stored."""
    upload = peers.collector().get_upload(upload_id)
    wanted = min(upload["count"], int(limit)) if limit else upload["count"]
    images, labels = [], []
    for _, items in _upload_items(reporter, upload, wanted, "read", 0.9):
        unreadable = [f"{item['name']}: {item['error']}" for item in items if "error" in item]
        if unreadable:
            raise AppError("unreadable_images", f"{len(unreadable)} image(s) of {upload['files'][0]['name']} cannot be "
                           f"read, e.g. {'; '.join(unreadable[:3])}. Remove them and upload again.")
        images += [np.frombuffer(base64.b64decode(item["image"]), np.uint8).reshape(28, 28) for item in items]
        labels += [item["label"] for item in items]
    lineage = {"source": "upload", "split": "train", "uploaded_by": upload["uploaded_by"], "files": upload["files"],
               "format": upload["format"], "first": wanted, "of": upload["count"]}
    return np.stack(images), np.array(labels, dtype=np.uint8), lineage, upload["name"]


def _forget_upload(upload_id: str) -> None:
    """The upload was read: the collector need not keep it (it would drop it after a while anyway)."""
    try:
        peers.collector().forget_upload(upload_id)
    except AppError as exc:
        logger.warning("upload %s was read but could not be dropped: %s", upload_id, exc.message)


# What a time-budgeted run spends after its training loop (evaluation, comparison, registration), in seconds.
FINISH_RESERVE_S = 3.0


def train_body(reporter: RunReporter, run: dict) -> dict:
    """Train an architecture on a dataset, evaluate it on held-out data, register the version."""
    started = time.monotonic()
    params = run["params"]
    architecture = get_architecture(params["architecture"])
    hp = validate_hyperparameters(architecture, params.get("hyperparameters"))
    data = persistently(lambda: dataset_split(peers.storage(), params["dataset_id"]), what="reading the dataset")
    def budget_left() -> float:
        return hp["time_budget_s"] - (time.monotonic() - started) - FINISH_RESERVE_S

    # Found before the width is fitted, so a time budget pays for it and the probe times steps that trace.
    pen = canvas_pen(data.train_images, hp, source=data.source, on_start=lambda count: reporter.progress(
        0.01, f"finding the centre lines of {count:,} digits for the canvas pen"))
    budget = 0.0
    if hp["time_budget_s"]:
        fit_to_budget(architecture, hp, params.get("hyperparameters") or {}, data.train_images, data.train_labels,
                      budget_left(), pen, on_probe=lambda width: reporter.progress(
                          0.01, f"timing width {width} on this CPU for the budget"))
        budget = max(budget_left(), 1.0)
    model = architecture.build(hp)
    try:
        epochs, seconds = _train_with_progress(reporter, model, data.train_images, data.train_labels, hp, data,
                                               time_budget_s=budget or None, on_epoch=sweeps.pruning_check(run),
                                               pen=pen)
    except sweeps.TrialPruned as pruned:  # a sweep's trial stopped early: it ends, with no version
        reporter.progress(0.99, str(pruned))
        last = reporter.epochs[-1] if reporter.epochs else {}
        return {"pruned": True, "reason": str(pruned), "epochs_done": len(reporter.epochs),
                "accuracy": last.get("val_accuracy")}
    if budget:
        hp["epochs"] = len(epochs)  # what the budget held, recorded with the version
    metrics = _metrics(reporter, model, data, epochs, seconds, trained_on=epochs[-1]["images_seen"])
    production = persistently(lambda: _production_judged_alike(data), what="looking for the production model")
    if production is not None:  # stored with the version: its report shows it without asking for it again
        metrics["comparison"] = _comparison(production, model, data)
    if params.get("sweep"):  # stored with the version: which sweep and trial it came from
        metrics["sweep"] = {"run": params["sweep"]["run"], "trial": params["sweep"]["trial"]}
    version = _register(model, run, {
        "architecture": architecture.name, "hyperparameters": hp, "dataset_ids": [params["dataset_id"]], "metrics": metrics,
    }, trained_on=_shown_to_everyone(data.source, data.train_images, data.train_labels))
    return {"model_version_id": version["id"], "accuracy": metrics["accuracy"]}


def fine_tune_body(reporter: RunReporter, run: dict) -> dict:
    """From a base version: train on accepted user samples plus a replay of the base data, compare, make it candidate."""
    params = run["params"]
    storage = peers.storage()
    base = storage.get_model_version(params["base_model_id"])
    architecture = get_architecture(base["architecture"])
    tuning = validate_values(FINE_TUNE_HYPERPARAMETERS, params.get("hyperparameters"))
    user_images, user_labels = peers.collector().user_samples()
    data = dataset_split(storage, held_out_dataset_id(base))
    # A held-out digit sent to review (the error browser) would judge the fine-tune on what it was trained on.
    held_out = {image.tobytes() for image in data.val_images}
    kept = np.array([image.tobytes() not in held_out for image in user_images], dtype=bool)
    excluded = int(len(user_labels) - kept.sum())
    user_images, user_labels = user_images[kept], user_labels[kept]
    if len(user_labels) == 0:
        raise AppError("no_user_samples", "There are no accepted user samples to fine-tune on"
                       + (f" ({excluded} are held-out digits of v{base['id']}, which judge it)." if excluded else "."))
    reporter.progress(0.02, f"{len(user_labels)} accepted user samples"
                      + (f" ({excluded} held-out digits left out)" if excluded else ""))
    user_dataset = storage.create_dataset(
        imagepack.pack(user_images, user_labels), name="user-accepted", source="user", split="train",
        created_by=run["created_by"], parents=[held_out_dataset_id(base)],
        meta={"lineage": {"source": "user", "split": "train", "first": int(len(user_labels)), "of": int(len(user_labels))}},
    )
    rng = np.random.default_rng(tuning["seed"])
    replay = rng.choice(len(data.train_labels), size=min(tuning["replay_size"], len(data.train_labels)), replace=False)
    images = np.concatenate([np.repeat(user_images, tuning["user_repeats"], axis=0), data.train_images[replay]])
    labels = np.concatenate([np.repeat(user_labels, tuning["user_repeats"]), data.train_labels[replay]])
    model = load_model_version(base).module
    hp = {**base["hyperparameters"], **tuning, "time_budget_s": 0}  # a fine-tune runs its epochs
    pen = canvas_pen(images, hp, source=data.source)
    epochs, seconds = _train_with_progress(reporter, model, images, labels, hp, data, pen=pen)
    metrics = _metrics(reporter, model, data, epochs, seconds, trained_on=epochs[-1]["images_seen"])
    production = persistently(lambda: model_cache().production(warm=False), what="loading the production model")
    metrics["comparison"] = _comparison(production, model, data)
    metrics["user_samples"] = {
        "count": int(len(user_labels)),
        "held_out_left_out": excluded,
        "accuracy_before": float((predict_proba(production.module, user_images).argmax(1) == user_labels).mean()),
        "accuracy_after": float((predict_proba(model, user_images).argmax(1) == user_labels).mean()),
    }
    version = _register(model, run, {
        "architecture": architecture.name, "hyperparameters": hp, "dataset_ids": [user_dataset["id"], data.dataset_id],
        "metrics": metrics, "base_version_id": base["id"],
    }, trained_on=_shown_to_everyone(data.source, data.train_images[replay], data.train_labels[replay]))
    storage.set_alias("candidate", model_version_id=version["id"], actor=run["created_by"],
                      reason=f"fine-tune of v{base['id']} on {len(user_labels)} user samples")
    return {"model_version_id": version["id"], "accuracy": metrics["accuracy"],
            "accuracy_delta": metrics["comparison"]["accuracy"]["delta"]}


def _train_with_progress(reporter, model, images, labels, hp, data: SplitData, time_budget_s: float | None = None,
                         on_epoch: Callable[[dict], None] | None = None, pen: strokes.Retracer | None = None):
    """`on_epoch`: called with each epoch's report once it is recorded (a sweep's trial may stop there)."""
    started = time.perf_counter()

    def on_progress(fraction: float, epoch: dict | None) -> None:
        if epoch is None:
            text = "training"
        else:
            planned = f"/{epoch['planned_epochs']}" if epoch["planned_epochs"] else ""
            text = f"epoch {epoch['epoch']}{planned}, loss {epoch['loss']:.4f}, about {epoch['eta_s']:.0f} s left"
        reporter.progress(0.05 + 0.9 * fraction, text, epoch)
        if epoch is not None and on_epoch is not None:
            on_epoch(epoch)

    epochs = train(model, images, labels, hp, on_progress=on_progress, val_images=data.val_images,
                   val_labels=data.val_labels, time_budget_s=time_budget_s, pen=pen)
    return epochs, time.perf_counter() - started


def _metrics(reporter, model, data: SplitData, epochs: list[dict], seconds: float, *, trained_on: int) -> dict:
    reporter.progress(0.96, "evaluating")
    metrics = evaluate_with_images(model, data.val_images, data.val_labels)
    metrics.update({
        "curves": epochs,
        "train_seconds": round(seconds, 2),
        "images_per_second": round(trained_on / seconds, 1),
        "split": data.info,
    })
    return metrics


def _production_judged_alike(data: SplitData) -> LoadedModel | None:
    """The production version, if there is one and it is judged on the same held-out digits as `data`."""
    try:
        production = model_cache().production(warm=False)
    except AppError as exc:
        if exc.code != "no_model":
            raise
        return None
    judged_on = held_out_dataset_id(peers.storage().get_model_version(production.version_id))
    return production if judged_on == data.dataset_id else None


def _comparison(production: LoadedModel, model: nn.Module, data: SplitData) -> dict:
    """The new version against production on the held-out digits, as ml_svc's `/compare` would answer."""
    before, after = predict_proba(production.module, data.val_images), predict_proba(model, data.val_images)
    return {"against": production.info, **compare(before, after, data.val_images, data.val_labels)}


def _shown_to_everyone(source: str, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Training digits a version's nearest examples may show (every viewer sees them): none of a dataset of users'
    accepted drawings (`source` user; a fine-tune's own samples are never passed here), and none at all rather than
    an empty index."""
    return None if len(labels) == 0 or source == "user" else (images, labels)


def _register(model, run: dict, fields: dict, *, trained_on: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """Store the weights and the index of the digits it was `trained_on` (images, labels; None: no nearest
    examples) for nearest examples, then the version; the blobs of a version that fails to register are removed.
    A version whose index cannot be built is registered without one."""
    storage = peers.storage()
    weights = weights_to_bytes(model)
    index = None
    if trained_on is not None:
        try:
            index = nearest.index_bytes(model, *trained_on)
        except AppError as exc:
            logger.warning("run %s: no nearest-examples index: %s", run["id"], exc.message)
    stored: list[str] = []
    try:
        stored.append(persistently(lambda: storage.put_blob(weights), what="storing the weights")["sha256"])
        if index is not None:
            stored.append(persistently(lambda: storage.put_blob(index), what="storing the nearest-examples index")["sha256"])
        payload = {**fields, "weights_sha256": stored[0], "nearest_index_sha256": stored[1] if index is not None else None,
                   "parameter_count": parameter_count(model), "created_by": run["created_by"], "run_id": run["id"]}
        # storage answers a repeated registration of the same run and weights with the version it already made
        return persistently(lambda: storage.create_model_version(payload), what="registering the version")
    except AppError:
        for sha256 in stored:  # no orphan blobs for a version that does not exist
            try:
                storage.delete_blob(sha256)
            except AppError as exc:  # storage away: the registration's own error is the one to report
                logger.warning("run %s: blob %s left behind: %s", run["id"], sha256[:12], exc.message)
        raise


EVALUATION_CHUNK = 2000


def evaluate_body(reporter: RunReporter, run: dict) -> dict:
    """A version on every image of a dataset (not only a held-out part), judged in float32 as training judges:
    accuracy, per-class precision/recall/F1, confusion matrix, the most confident mistakes; recorded in storage."""
    params = run["params"]
    storage = peers.storage()
    version = persistently(lambda: storage.get_model_version(params["model_id"]), what="reading the version")
    reporter.progress(0.05, f"loading {version['version']}")
    module = load_model_version(version).module
    images, labels = persistently(lambda: storage.dataset_arrays(params["dataset_id"]), what="reading the dataset")
    chunks = []
    for start in range(0, len(labels), EVALUATION_CHUNK):  # each chunk a heartbeat, a cancel point, an event
        reporter.progress(0.3 + 0.65 * start / max(len(labels), 1), f"evaluated {start} of {len(labels)} images")
        chunks.append(predict_proba(module, images[start:start + EVALUATION_CHUNK]))
    probabilities = np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)
    metrics = metrics_with_images(probabilities, images, labels)
    evaluation = persistently(lambda: storage.create_evaluation(
        version["id"], dataset_id=params["dataset_id"], run_id=run["id"], metrics=metrics, created_by=run["created_by"],
    ), what="recording the evaluation")
    return {"evaluation_id": evaluation["id"], "model_version_id": version["id"], "dataset_id": params["dataset_id"],
            "accuracy": metrics["accuracy"], "evaluated_on": metrics["evaluated_on"]}


INFER_RESULTS_HEADER = "file,digit,confidence,true_label,correct,error\r\n"


def infer_body(reporter: RunReporter, run: dict) -> dict:
    """Score an uploaded file's images with one version; each answer recorded in the history as a prediction of
    this run, the whole as a CSV (file name, digit, confidence, true label, correct) and, where labels were given,
    accuracy and the confusion matrix."""
    params = run["params"]
    upload = persistently(lambda: peers.collector().get_upload(params["upload"]), what="reading the upload")
    loaded = model_cache().version(params["model_id"])
    serving = loaded.float32  # as reports, evaluations and the downloaded ONNX file answer (a worker quantises nothing)
    rows, scored_probabilities, scored_labels, unreadable = [], [], [], 0
    for offset, items in _upload_items(reporter, upload, upload["count"], "scored", 0.95):
        readable = [(offset + n, item) for n, item in enumerate(items) if "image" in item]
        images = np.stack([np.frombuffer(base64.b64decode(item["image"]), np.uint8).reshape(28, 28)
                           for _, item in readable]) if readable else np.zeros((0, 28, 28), np.uint8)
        started = time.perf_counter()
        probabilities = serving.probabilities(images) if readable else np.zeros((0, 10), np.float32)
        latency_ms = (time.perf_counter() - started) * 1000 / max(len(readable), 1)
        _record_scored(run, loaded.version_id, readable, probabilities, latency_ms)
        answers = dict(zip((position for position, _ in readable), probabilities, strict=True))
        for n, item in enumerate(items):
            probs = answers.get(offset + n)
            rows.append(_result_row(item, probs))
            unreadable += probs is None
            if probs is not None and item["label"] is not None:
                scored_probabilities.append(probs)
                scored_labels.append(item["label"])
    data = "".join([INFER_RESULTS_HEADER, *rows]).encode()
    stored = persistently(lambda: peers.storage().put_blob(data), what="storing the results")
    _forget_upload(upload["id"])
    result = {"model_version_id": loaded.version_id, "file": params.get("file", ""), "count": upload["count"],
              "scored": upload["count"] - unreadable, "unreadable": unreadable, "labelled": len(scored_labels),
              "results_sha256": stored["sha256"], "results_bytes": len(data)}
    if scored_labels:
        metrics = metrics_of(np.stack(scored_probabilities), np.array(scored_labels))
        result |= {"accuracy": metrics["accuracy"], "confusion_matrix": metrics["confusion_matrix"],
                   "per_class": metrics["per_class"]}
    return result


def _record_scored(run: dict, version_id: int, readable: list, probabilities: np.ndarray, latency_ms: float) -> None:
    """The batch's answers in the history, each keyed by run and position: a retried write records them once."""
    if not readable:
        return
    items = [{"image_b64": item["image"], "digit": int(probs.argmax()),
              "probabilities": [round(float(p), 6) for p in probs], "model_version_id": version_id,
              "latency_ms": round(latency_ms, 3), "user": run["created_by"], "run_id": run["id"],
              "request_key": f"run-{run['id']}-{position}"}
             for (position, item), probs in zip(readable, probabilities, strict=True)]
    persistently(lambda: peers.storage().create_predictions(items), what="recording the scored images")


def _csv_text(text: str) -> str:
    """A quoted CSV field; text a spreadsheet would run as a formula (=, +, -, @) starts with an apostrophe."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return '"' + text.replace('"', '""') + '"'


def _result_row(item: dict, probabilities: np.ndarray | None) -> str:
    name = _csv_text(item["name"])
    label = "" if item["label"] is None else str(item["label"])
    if probabilities is None:
        return f"{name},,,{label},,{_csv_text(item.get('error', ''))}\r\n"
    digit = int(probabilities.argmax())
    correct = "" if item["label"] is None else str(digit == item["label"]).lower()
    return f"{name},{digit},{float(probabilities[digit]):.4f},{label},{correct},\r\n"


@task()
def infer_file(run_id: int) -> None:
    run_scenario(run_id, infer_body)


@task()
def collect_dataset(run_id: int) -> None:
    run_scenario(run_id, collect_body)


@task()
def train_model(run_id: int) -> None:
    sweeps_of: list[dict] = []  # the run as run_scenario read it: no second read to learn whether it is a trial

    def body(reporter: RunReporter, run: dict) -> dict:
        sweeps_of.append(run["params"].get("sweep"))
        return train_body(reporter, run)

    run_scenario(run_id, body)
    if sweeps_of and sweeps_of[0]:  # a sweep's trial ended: its sweep goes on at once, not at its next tick
        _advance_sweep(sweeps_of[0]["run"])


def _advance_sweep(sweep_id: int) -> bool:
    try:
        return sweeps.advance(sweep_id)
    except Exception:  # the next tick tries again; a sweep must not fail for one missed step
        logger.exception("sweep %s could not advance", sweep_id)
        return True


@task()
def sweep_tick(sweep_id: int) -> None:
    """While a sweep lasts: tell what ended (a trial whose worker died is failed by storage in time), start what
    may start; then come back in sweeps.TICK_S."""
    if _advance_sweep(sweep_id):
        sweep_tick.using(run_after=sweeps.tick_again_at()).enqueue(sweep_id)


@task()
def fine_tune_model(run_id: int) -> None:
    run_scenario(run_id, fine_tune_body)


@task()
def evaluate_version(run_id: int) -> None:
    run_scenario(run_id, evaluate_body)


@task()
def bootstrap_first_model(source: str, architecture: str, hyperparameters: dict) -> None:
    """First start: collect `source`, train, and promote the result if nothing serves yet."""
    storage = peers.storage()
    collect = storage.create_run(
        kind="collect", params={"source": source, "split": "train", "batch_size": 1000}, created_by="system"
    )
    collected = run_scenario(collect["id"], collect_body)
    if not collected:
        return
    training = persistently(lambda: storage.create_run(
        kind="train",
        params={"dataset_id": collected["dataset_id"], "architecture": architecture, "hyperparameters": hyperparameters},
        created_by="system",
    ), what="queueing the first training")
    trained = run_scenario(training["id"], train_body)
    if not trained:
        return
    if persistently(storage.production_version, what="looking for a production model") is not None:
        logger.info("a production model already exists; leaving v%s as a plain version", trained["model_version_id"])
    else:
        persistently(lambda: storage.set_alias("production", model_version_id=trained["model_version_id"], actor="system",
                                               reason="first model at first start"), what="promoting the first model")
