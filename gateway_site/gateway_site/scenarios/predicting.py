"""Predictions through the gateway (the API's single and batch requests, the Recognize page): classified by
ml_svc, recorded in the history, both in batches.

Each gateway process keeps two batchers (kit/batching.py) in a pipeline: concurrent requests'
images go to ml_svc in one `/predict/batch` call, and their answers to storage_svc in one bulk
insert, while the next batch is being classified. A request is answered 201 only after its row
is committed, so an acknowledged prediction is never lost; a storage outage shorter than
`history_retry_s` delays answers instead of failing them (each row carries a request key, so a
retried batch is recorded once). At most `predict_max_in_flight` predictions are inside a process
at once: past that the answer is an immediate 503 with Retry-After.

A batch request (`classify_and_record_batch`) is already a batch: its images go to ml_svc in one call of their
own, and its answers into the history in one write (never split), through the same admission, row builder and
history batcher as single predictions.
"""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict

from django.conf import settings

from gateway_site import peers
from kit.batching import Admission, Batcher
from kit.errors import AppError

MAX_BATCH_IMAGES = 256  # images in one batch request
_lock = threading.Lock()
_pipeline: tuple[Batcher, Batcher, Admission] | None = None


def _classify(items: list[dict]) -> list[dict | AppError]:
    """ml_svc's answers for a batch of prediction bodies, one call per requested model."""
    results: list[dict | AppError | None] = [None] * len(items)
    groups: dict[object, list[int]] = defaultdict(list)
    for position, item in enumerate(items):
        groups[repr(item.get("model_id"))].append(position)
    for positions in groups.values():
        payload: dict = {"images": [{k: v for k, v in items[p].items() if k != "model_id"} for p in positions]}
        if items[positions[0]].get("model_id") is not None:
            payload["model_id"] = items[positions[0]]["model_id"]
        try:
            answer = peers.ml().predict_batch(payload, timeout=settings.PREDICT_TIMEOUT_S)
        except AppError as exc:
            if exc.status >= 500:
                raise
            for position in positions:
                results[position] = exc
            continue
        share = round(answer["latency_ms"] / len(positions), 3)
        for position, result in zip(positions, answer["results"], strict=True):
            if "error" in result:
                error = result["error"]
                results[position] = AppError(error["code"], error["message"], status=error.get("status", 400))
            else:
                results[position] = {"model": answer["model"], **result, "latency_ms": share}
    return results


def _record(rows: list[dict]) -> list[dict]:
    return peers.storage().create_predictions(rows)


def _parts() -> tuple[Batcher, Batcher, Admission]:
    """This process's (classifier, history, admission), built on first use and published in one assignment,
    so the prediction path reads it without a lock and never sees half of it."""
    global _pipeline
    pipeline = _pipeline
    if pipeline is not None:
        return pipeline
    with _lock:
        if _pipeline is None:
            _pipeline = (
                Batcher("prediction batches to ml_svc", _classify, max_items=settings.PREDICT_BATCH_MAX,
                        max_wait_s=settings.PREDICT_BATCH_WAIT_S, max_pending=settings.PREDICT_MAX_IN_FLIGHT),
                Batcher("history writes to storage_svc", _record, max_items=settings.PREDICT_BATCH_MAX,
                        max_wait_s=settings.PREDICT_BATCH_WAIT_S,
                        max_pending=settings.PREDICT_MAX_IN_FLIGHT * MAX_BATCH_IMAGES,
                        retry_for_s=settings.HISTORY_RETRY_S),
                Admission(settings.PREDICT_MAX_IN_FLIGHT, "predictions in progress"),
            )
        return _pipeline


def history_row(*, username: str, result: dict, model_id: int, latency_ms: float,
                raw_image_b64: str | None = None) -> dict:
    """The history row of one answered prediction (the candidate's shadow answer beside it, if it had one), with
    the request key that makes a retried write harmless."""
    row = {"image_b64": result["image"], "raw_image_b64": raw_image_b64, "digit": result["digit"],
           "probabilities": result["probabilities"], "model_version_id": model_id, "latency_ms": latency_ms,
           "user": username, "request_key": uuid.uuid4().hex}
    if "shadow" in result:
        row["shadow"] = result["shadow"]
    return row


def predict_and_record(*, username: str, body: dict, raw_image_b64: str | None = None) -> dict:
    """The answer of one prediction, after it is recorded in `username`'s history. A model_id-less request is live
    traffic: it carries the user (`route`) for the candidate's canary and shadow scoring (ml_svc's inference.py)."""
    classifier, history, admission = _parts()
    with admission():
        result = classifier.submit(body if body.get("model_id") is not None else {**body, "route": username})
        stored = history.submit(history_row(username=username, result=result, model_id=result["model"]["id"],
                                            latency_ms=result["latency_ms"], raw_image_b64=raw_image_b64))
    return {"id": stored["id"], "digit": result["digit"], "probabilities": result["probabilities"],
            "model": result["model"], "image": result["image"], "created_at": stored["created_at"]}


def classify_and_record_batch(*, username: str, payload: dict) -> dict:
    """ml_svc's answers for a batch request ({"images": [...], "model_id"?}), each answered image recorded in
    `username`'s history (its "id" and "created_at" added); an image ml_svc refused keeps its error."""
    _, history, admission = _parts()
    if payload.get("model_id") is None:
        payload = {**payload, "images": [{**image, "route": username} for image in payload["images"]]}
    with admission():
        answer = peers.ml().predict_batch(payload, timeout=settings.PREDICT_TIMEOUT_S)
        answered = [result for result in answer["results"] if "digit" in result]
        share = round(answer["latency_ms"] / max(len(answered), 1), 3)
        stored = history.submit_many([history_row(username=username, result=result,
                                                  model_id=result.get("model", answer["model"])["id"],
                                                  latency_ms=share) for result in answered]) if answered else []
    failed = next((row for row in stored if isinstance(row, AppError)), None)
    if failed is not None:
        raise failed
    model = answer["model"]
    for result, row in zip(answered, stored, strict=True):
        result["id"], result["created_at"] = row["id"], row["created_at"]
        result.pop("shadow", None)  # the candidate's answer is for the history, never the user
        model = result.pop("model", model)  # one user: all in the candidate's canary, or none
    return {"model": model, "results": answer["results"]}


def close(timeout_s: float = 30.0) -> None:
    """At process exit: let every prediction inside finish (classified, recorded, answered), then stop."""
    global _pipeline
    with _lock:
        pipeline, _pipeline = _pipeline, None
    if pipeline is None:
        return
    classifier, history, admission = pipeline
    admission.drain(timeout_s)
    classifier.close(timeout_s)
    history.close(timeout_s)
