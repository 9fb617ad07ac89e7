"""The gateway's scenarios, shared by the REST API and the HTML pages.

Each checks nothing about roles (views do) and talks to peers only through their clients.
"""

from __future__ import annotations

import base64
import contextlib
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from gateway_site import peers
from gateway_site.accounts.models import audit
from gateway_site.accounts.roles import sees_everyones
from gateway_site.scenarios import limits, predicting
from kit.errors import AppError, PeerUnavailable

MAX_IMAGE_BYTES = 2 * 1024 * 1024
PREDICTION_FIELDS = {"image_base64", "pixels", "model_id", "explain"}


def check_image_size(size: int) -> None:
    """An uploaded image's bytes must be within MAX_IMAGE_BYTES (the one place this is said)."""
    if size > MAX_IMAGE_BYTES:
        raise AppError("too_large", f"The image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB.", status=413,
                       details={"image": f"{size} bytes; at most {MAX_IMAGE_BYTES}"})


def prediction_create(*, username: str, payload: dict, raw_image: bytes | None = None) -> dict:
    """Classify an image with ml_svc and record the answer in the user's history."""
    limits.charge(username, "predictions")
    if raw_image is not None:
        check_image_size(len(raw_image))
        payload = {**payload, "image_base64": base64.b64encode(raw_image).decode()}
    unknown = set(payload) - PREDICTION_FIELDS
    if unknown:
        raise AppError("invalid", f"Unknown fields: {', '.join(sorted(unknown))}.", details={f: "unknown field" for f in unknown})
    explain = payload.pop("explain", False) if "explain" in payload else False
    if not isinstance(explain, bool):
        raise AppError("invalid", "explain must be true or false.", details={"explain": "not a boolean"})
    image_b64 = payload.get("image_base64") if isinstance(payload.get("image_base64"), str) else None
    if image_b64 and image_b64.startswith("data:"):
        image_b64 = image_b64.partition(",")[2]
    answer = predicting.predict_and_record(username=username, body=payload, raw_image_b64=image_b64)
    if explain:  # asked for: its cost is this request's alone, after the answer is recorded
        answer["explanation"] = explanation_of(answer)
    return answer


def explanation_of(prediction: dict) -> dict:
    """Why the prediction's version answered its digit (ml_svc's integrated gradients over the 28x28 input)."""
    return peers.ml().explain(image=prediction["image"], model_id=prediction["model"]["id"], target=prediction["digit"])


def prediction_explanation(*, user, prediction_id: int) -> dict:
    """The explanation of one of the user's predictions (engineers: any)."""
    limits.charge(user.get_username(), "predictions")
    return explanation_of(prediction_visible_to(user, prediction_id))


def predictions_create_batch(*, username: str, payload: dict) -> dict:
    """Classify up to 256 images in one call; every answered one is recorded in the history."""
    if not isinstance(payload, dict) or set(payload) - {"images", "model_id"}:
        raise AppError("invalid", "Send {\"images\": [...], \"model_id\"?}.")
    images = payload.get("images")
    most = predicting.MAX_BATCH_IMAGES
    if not isinstance(images, list) or not 1 <= len(images) <= most or not all(isinstance(i, dict) for i in images):
        raise AppError("invalid", f"images must be a list of 1 to {most} objects, each like a single prediction's body.",
                       details={"images": "required"})
    with limits.one_batch_at_a_time(username):  # a batch refused as busy is not charged
        limits.charge(username, "predictions", len(images))
        return predicting.classify_and_record_batch(username=username, payload=payload)


def fine_tune_start(*, username: str, base_model_id: int, hyperparameters: dict) -> dict:
    limits.charge(username, "scenarios")
    run = peers.ml().start_fine_tune(base_model_id=base_model_id, hyperparameters=hyperparameters, created_by=username)
    audit(actor=username, action="fine_tune.start", target=f"run:{run['id']}", details={"base_model_id": base_model_id})
    return run


def collect_start(*, username: str, source: str, batch_size: int, max_samples: int | None, split: str = "train") -> dict:
    limits.charge(username, "scenarios")
    run = peers.ml().start_collect(
        source=source, batch_size=batch_size, max_samples=max_samples, split=split, created_by=username
    )
    audit(actor=username, action="collect.start", target=f"run:{run['id']}", details={"source": source, "split": split})
    return run


def uploaded_files(request) -> list[tuple[str, bytes]]:
    """The multipart `file` parts of an upload (two for an IDX pair), refused before anything is read when the
    body is over settings.UPLOAD_MAX_BYTES."""
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isascii() or not length.isdigit() or int(length) > settings.UPLOAD_MAX_BYTES + MULTIPART_ROOM:
        raise AppError("too_large", f"An upload may hold up to {settings.UPLOAD_MAX_BYTES:,} bytes.", status=413,
                       details={"limit": settings.UPLOAD_MAX_BYTES})
    files = request.FILES.getlist("file")
    if not 1 <= len(files) <= 2:
        raise AppError("invalid", "Send the file as the multipart field `file` (twice for an IDX images/labels pair).",
                       details={"file": "required"})
    return [(file.name or "upload", file.read()) for file in files]


MULTIPART_ROOM = 64 * 1024  # the multipart envelope around the files: boundaries, part headers, small fields


def dataset_upload(*, username: str, files: list[tuple[str, bytes]], name: str) -> dict:
    """Hand the file to the collector (which refuses what it cannot take, keeping nothing) and queue its collect
    run: the run, and what the upload holds."""
    limits.charge(username, "scenarios")
    upload = peers.collector().upload(files, purpose="dataset", uploaded_by=username, name=name)
    with _forgotten_unless_started(upload):
        run = peers.ml().start_collect(source="upload", upload=upload["id"], batch_size=1000, max_samples=None,
                                       created_by=username)
    audit(actor=username, action="dataset.upload", target=f"run:{run['id']}",
          details={"files": upload["files"], "count": upload["count"]})
    return {**run, "upload": upload}


@contextlib.contextmanager
def _forgotten_unless_started(upload: dict):
    """An upload whose run could not start (a version that does not exist, a rate limit, the queue away) is not
    kept on the collector's disk."""
    try:
        yield
    except Exception:
        try:
            peers.collector().forget_upload(upload["id"])
        except AppError:
            pass  # the collector drops it after upload_keep_hours anyway
        raise


def file_scoring_start(*, username: str, files: list[tuple[str, bytes]], model_id: int | None) -> dict:
    """Score a file's images with a version (production's unless named) as a run; each answer is recorded in
    the user's history."""
    limits.charge(username, "scenarios")
    upload = peers.collector().upload(files, purpose="score", uploaded_by=username)
    with _forgotten_unless_started(upload):
        limits.charge(username, "predictions", upload["count"])  # each image is a prediction in the history
        run = peers.ml().start_infer(upload=upload["id"], model_id=model_id, created_by=username)
    audit(actor=username, action="infer.start", target=f"run:{run['id']}",
          details={"files": upload["files"], "count": upload["count"], "model_id": run["params"]["model_id"]})
    return {**run, "upload": upload}


def prediction_correct(*, user, prediction_id: int, label: int) -> dict:
    """The user's right label for their prediction; it becomes a sample pending review."""
    limits.charge(user.get_username(), "uploads")
    prediction_visible_to(user, prediction_id)
    sample = peers.storage().prediction_feedback(prediction_id, label=label, user=user.get_username())
    audit(actor=user.get_username(), action="prediction.correct", target=f"prediction:{prediction_id}", details={"label": label})
    return sample


def prediction_visible_to(user, prediction_id: int) -> dict:
    """The prediction if it is the user's own (engineers: any); another's is reported missing."""
    prediction = peers.storage().get_prediction(prediction_id)
    if prediction["user"] != user.get_username() and not sees_everyones(user):
        raise AppError("not_found", f"prediction {prediction_id} does not exist", status=404)
    return prediction


def sample_upload(*, username: str, payload: dict, label: int, raw_image: bytes | None = None) -> dict:
    """A labelled drawing or image, canonicalised by ml_svc, pending review."""
    limits.charge(username, "uploads")
    if raw_image is not None:
        check_image_size(len(raw_image))
        payload = {"image_base64": base64.b64encode(raw_image).decode()}
    canonical = peers.ml().canonicalize(payload)
    sample = peers.storage().create_sample({"image_b64": canonical["image"], "label": label, "user": username})
    audit(actor=username, action="sample.upload", target=f"sample:{sample['id']}", details={"label": label})
    return sample


def sample_review(*, username: str, sample_id: int, decision: str) -> dict:
    status = {"accept": "accepted", "reject": "rejected"}[decision]
    sample = peers.storage().review_sample(sample_id, status=status, reviewer=username)
    audit(actor=username, action=f"sample.{decision}", target=f"sample:{sample_id}")
    return sample


def training_start(*, username: str, dataset_id: int, architecture: str | None, hyperparameters: dict) -> dict:
    limits.charge(username, "scenarios")
    run = peers.ml().start_training(
        dataset_id=dataset_id, architecture=architecture, hyperparameters=hyperparameters, created_by=username
    )
    audit(actor=username, action="train.start", target=f"run:{run['id']}", details={"dataset_id": dataset_id, "architecture": architecture})
    return run


def sweep_start(*, username: str, **params) -> dict:
    """A hyperparameter sweep over ml_svc's workers: dataset_id, architecture, search_space, trials, max_parallel,
    time_budget_s, hyperparameters, seed."""
    limits.charge(username, "scenarios")
    run = peers.ml().start_sweep(created_by=username, **params)
    audit(actor=username, action="sweep.start", target=f"run:{run['id']}",
          details={"dataset_id": params["dataset_id"], "trials": params["trials"]})
    return run


def evaluation_start(*, username: str, model_id: int, dataset_id: int) -> dict:
    limits.charge(username, "scenarios")
    run = peers.ml().start_evaluation(model_id=model_id, dataset_id=dataset_id, created_by=username)
    audit(actor=username, action="evaluate.start", target=f"run:{run['id']}",
          details={"model_id": model_id, "dataset_id": dataset_id})
    return run


def run_cancel(*, username: str, run_id: int) -> dict:
    run = peers.storage().update_run(run_id, status="cancelled", message=f"cancelled by {username}")
    audit(actor=username, action="run.cancel", target=f"run:{run_id}")
    return run


def model_annotate(*, username: str, version_id: int, note: str) -> dict:
    version = peers.storage().annotate_model_version(version_id, note)
    audit(actor=username, action="model.note", target=f"model:{version_id}")
    return version


def services_health() -> dict:
    """Readiness of every service, asked in parallel so a dead one costs one timeout."""

    def probe(item):
        name, client = item
        try:
            client.ready()
            return name, {"status": "ok"}
        except PeerUnavailable as exc:
            return name, {"status": "unavailable", "reason": exc.message}
        except AppError as exc:
            return name, {"status": "unavailable", "reason": exc.message}

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(pool.map(probe, peers.all_peers().items()))
    results["gateway_site"] = {"status": "ok"}
    return results
