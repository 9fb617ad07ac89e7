"""In-memory stand-ins for the peer services, at the seam: their typed clients."""

from __future__ import annotations

import base64
import hashlib
import itertools

import numpy as np

from kit import imagepack
from kit.clients import CollectorClient, StorageClient
from kit.contracts import EXAMPLE_TIME, collector, example, storage
from kit.errors import AppError, PeerUnavailable
from kit.fakecheck import answering_as


class FakeStorage:
    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.runs: dict[int, dict] = {}
        self.datasets: dict[int, bytes] = {}
        self.dataset_rows: dict[int, dict] = {}
        self.versions: dict[int, dict] = {}
        self.aliases: dict[str, int] = {}
        self.ledger: list[tuple] = []
        self.evaluations: list[dict] = []
        self.predictions: dict[str | int, dict] = {}  # by request key where given
        self.accepted = (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
        self.down = False
        self._ids = itertools.count(1)

    def _check(self):
        if self.down:
            raise PeerUnavailable("storage_svc", "connection refused or reset")

    def ready(self) -> None:
        self._check()

    def put_blob(self, data: bytes) -> dict:
        self._check()
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = data
        return {"sha256": sha, "size": len(data)}

    def get_blob(self, sha256: str) -> bytes:
        self._check()
        return self.blobs[sha256]

    def delete_blob(self, sha256: str) -> dict:
        return {"deleted": self.blobs.pop(sha256, None) is not None}

    def create_run(self, *, kind, params, created_by, parent_run=None) -> dict:
        run_id = next(self._ids)
        self.runs[run_id] = example(storage.Run, id=run_id, kind=kind, params=params, created_by=created_by,
                                    parent_run=parent_run)
        return dict(self.runs[run_id])

    def list_runs(self, **filters) -> dict:
        runs = [dict(r) for r in self.runs.values()
                if all(r.get(key) == value for key, value in filters.items() if key not in ("page", "page_size"))]
        return example(storage.RunPage, count=len(runs), results=runs)

    def get_run(self, run_id: int) -> dict:
        return dict(self.runs[run_id])

    def update_run(self, run_id: int, **fields) -> dict:
        run = self.runs[run_id]
        if run["status"] in ("succeeded", "failed", "cancelled"):
            raise AppError("run_finished", f"run {run_id} already ended as {run['status']}", status=409)
        if fields.pop("heartbeat", False):
            run["heartbeat_at"] = EXAMPLE_TIME
        if fields.get("status") == "running" and run["started_at"] is None:
            run["started_at"] = EXAMPLE_TIME
        run.update(fields)
        if fields.get("status") == "cancelled":  # as storage does: a sweep's unfinished trials end with it
            for child in self.runs.values():
                if child.get("parent_run") == run_id and child["status"] in ("queued", "running"):
                    child["status"] = "cancelled"
        return dict(run)

    def create_dataset(self, data: bytes, *, meta=None, **fields) -> dict:
        dataset_id = next(self._ids)
        images, labels = imagepack.unpack(data)
        self.datasets[dataset_id] = data
        counts = np.bincount(labels, minlength=10)
        self.dataset_rows[dataset_id] = example(
            storage.Dataset, id=dataset_id, num_samples=len(labels), sha256=hashlib.sha256(data).hexdigest(),
            meta=meta or {}, class_counts={str(d): int(c) for d, c in enumerate(counts)},
            name=fields.get("name", ""), source=fields.get("source", ""), split=fields.get("split", "train"),
            created_by=fields.get("created_by", ""),
            parents=list(fields.get("parents") or []))
        return dict(self.dataset_rows[dataset_id])

    def get_dataset(self, dataset_id: int) -> dict:
        if dataset_id not in self.datasets:
            raise AppError("not_found", f"dataset {dataset_id} does not exist", status=404)
        return dict(self.dataset_rows[dataset_id])

    def dataset_arrays(self, dataset_id: int):
        return imagepack.unpack(self.datasets[dataset_id])

    def create_model_version(self, payload: dict) -> dict:
        if payload["weights_sha256"] not in self.blobs:
            raise AppError("not_found", "weights blob is not stored", status=404)
        if payload.get("nearest_index_sha256") and payload["nearest_index_sha256"] not in self.blobs:
            raise AppError("not_found", "nearest-examples index blob is not stored", status=404)
        version_id = next(self._ids)
        self.versions[version_id] = example(
            storage.ModelVersion, id=version_id, version=f"v{version_id}", architecture=payload["architecture"],
            hyperparameters=payload.get("hyperparameters", {}), datasets=payload.get("dataset_ids", []),
            base_version=payload.get("base_version_id"), metrics=payload.get("metrics", {}),
            weights_sha256=payload["weights_sha256"], weights_size=len(self.blobs[payload["weights_sha256"]]),
            nearest_index_sha256=payload.get("nearest_index_sha256"),
            parameter_count=payload.get("parameter_count", 0), run=payload.get("run_id"), note=payload.get("note", ""),
            created_by=payload.get("created_by", ""))
        return dict(self.versions[version_id])

    def get_model_version(self, version_id: int) -> dict:
        self._check()
        if version_id not in self.versions:
            raise AppError("not_found", f"model version {version_id} does not exist", status=404)
        return {**self.versions[version_id], "aliases": sorted(a for a, v in self.aliases.items() if v == version_id)}

    def create_evaluation(self, version_id: int, *, dataset_id: int, run_id, metrics: dict, created_by: str) -> dict:
        self.get_model_version(version_id)
        self.get_dataset(dataset_id)
        evaluation = example(storage.Evaluation, id=next(self._ids), model_version=version_id, dataset=dataset_id,
                             run=run_id, metrics=metrics, created_by=created_by)
        self.evaluations.append(evaluation)
        return evaluation

    def get_alias(self, name: str) -> dict:
        self._check()
        if name not in self.aliases:
            raise AppError("not_found", f"alias {name} points nowhere yet", status=404)
        return example(storage.Alias, name=name, model_version=self.get_model_version(self.aliases[name]))

    production_version = StorageClient.production_version  # the client's own reading of get_alias

    def set_alias(self, name: str, *, model_version_id: int, actor: str, reason: str, action: str = "move",
                  details: dict | None = None) -> dict:
        self.aliases[name] = model_version_id
        self.ledger.append((name, model_version_id, actor, reason))
        if name == "candidate":
            self.canary_share = 0.0
        return self.get_alias(name)

    canary_share = 0.0

    def rollout(self) -> dict:
        self._check()
        versions = {name: self.get_model_version(self.aliases[name]) if name in self.aliases else None
                    for name in ("production", "candidate")}
        return example(storage.RolloutState, **versions, canary_share=self.canary_share)

    def list_samples(self, **filters) -> dict:
        return example(storage.SamplePage, count=len(self.accepted[1]))

    def create_predictions(self, items: list[dict]) -> list[dict]:
        self._check()
        recorded = []
        for item in items:
            key = item.get("request_key") or next(self._ids)
            self.predictions.setdefault(key, {**item, "id": next(self._ids)})
            recorded.append({"id": self.predictions[key]["id"], "created_at": EXAMPLE_TIME})
        return recorded


class FakeCollector:
    def __init__(self, images, labels, storage=None):
        self.images, self.labels = images, labels
        self.storage = storage
        self.uploads: dict[str, tuple[dict, list[dict]]] = {}

    def user_samples(self):
        return self.storage.accepted

    def sources(self) -> dict:
        return {"sources": [{"source": "mnist-5k", "description": "", "splits": ["train"]},
                            {"source": "user", "description": "", "splits": ["train"]}]}

    def source(self, name: str) -> dict:
        if name not in ("mnist-5k", "user"):
            raise AppError("unknown_source", f"unknown source {name!r}", status=404)
        labels = self.storage.accepted[1] if name == "user" else self.labels
        counts = {str(d): int(c) for d, c in enumerate(np.bincount(labels, minlength=10))}
        split = {"count": len(labels), "class_counts": counts, "sha256": "f" * 64}
        return {"source": name, "description": "", "splits": {"train": split}}

    def batch(self, *, source, split, size, offset):
        end = min(offset + size, len(self.labels))
        return self.images[offset:end], self.labels[offset:end], end if end < len(self.labels) else None

    def get_upload(self, upload_id: str) -> dict:
        if upload_id not in self.uploads:
            raise AppError("not_found", f"There is no upload {upload_id}", status=404)
        return self.uploads[upload_id][0]

    def upload_batch(self, upload_id: str, *, offset: int, size: int) -> dict:
        items = self.uploads[upload_id][1]
        end = min(offset + size, len(items))
        return {"items": items[offset:end], "next_offset": end if end < len(items) else None}

    def forget_upload(self, upload_id: str) -> None:
        self.uploads.pop(upload_id, None)


def staged_upload(fake: FakeCollector, images, labels, *, purpose: str, errors: dict[int, str] | None = None) -> str:
    """An upload the collector holds: these canonical images (labels None: unlabelled); `errors`: positions that cannot be read."""
    upload_id = f"{len(fake.uploads) + 1:032x}"
    items = []
    for n, image in enumerate(images):
        item = {"name": f"{n}/digit-{n}.png", "label": None if labels is None else int(labels[n])}
        if n in (errors or {}):
            item["error"] = errors[n]
        else:
            item["image"] = base64.b64encode(np.ascontiguousarray(image, np.uint8).tobytes()).decode()
        items.append(item)
    known = [] if labels is None else [int(v) for v in labels]
    upload = example(collector.Upload, id=upload_id, purpose=purpose, count=len(items), labelled=len(known),
                     class_counts={str(d): known.count(d) for d in range(10)}, name="my-digits", format="zip",
                     files=[{"name": "my-digits.zip", "bytes": 1234, "sha256": "a" * 64}], uploaded_by="eve")
    fake.uploads[upload_id] = (upload, items)
    return upload_id


# Every answer of the fakes is checked against the real client's contract (kit.contracts).
FakeStorage = answering_as(FakeStorage, StorageClient)
FakeCollector = answering_as(FakeCollector, CollectorClient)
