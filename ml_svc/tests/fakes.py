"""In-memory stand-ins for the peer services, at the seam: their typed clients."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np

from kit import imagepack
from kit.clients import StorageClient
from kit.errors import AppError, PeerUnavailable


class FakeStorage:
    def __init__(self):
        self.blobs: dict[str, bytes] = {}
        self.runs: dict[int, dict] = {}
        self.datasets: dict[int, bytes] = {}
        self.dataset_rows: dict[int, dict] = {}
        self.versions: dict[int, dict] = {}
        self.aliases: dict[str, int] = {}
        self.ledger: list[tuple] = []
        self.accepted = (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
        self.down = False
        self._ids = itertools.count(1)

    def _check(self):
        if self.down:
            raise PeerUnavailable("storage_svc", "connection refused or reset")

    def put_blob(self, data: bytes) -> dict:
        self._check()
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = data
        return {"sha256": sha, "size": len(data)}

    def get_blob(self, sha256: str) -> bytes:
        self._check()
        return self.blobs[sha256]

    def delete_blob(self, sha256: str) -> None:
        self.blobs.pop(sha256, None)

    def create_run(self, *, kind, params, created_by) -> dict:
        run_id = next(self._ids)
        self.runs[run_id] = {"id": run_id, "kind": kind, "params": params, "created_by": created_by,
                             "status": "queued", "progress": 0.0, "epochs": [], "result": {}, "error": ""}
        return dict(self.runs[run_id])

    def get_run(self, run_id: int) -> dict:
        return dict(self.runs[run_id])

    def update_run(self, run_id: int, **fields) -> dict:
        run = self.runs[run_id]
        if run["status"] in ("succeeded", "failed", "cancelled"):
            raise AppError("run_finished", f"run {run_id} already ended as {run['status']}", status=409)
        run.update(fields)
        return dict(run)

    def create_dataset(self, data: bytes, *, meta=None, **fields) -> dict:
        dataset_id = next(self._ids)
        images, labels = imagepack.unpack(data)
        self.datasets[dataset_id] = data
        self.dataset_rows[dataset_id] = {"id": dataset_id, "num_samples": len(labels),
                                         "sha256": hashlib.sha256(data).hexdigest(), "meta": meta or {}, **fields}
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
        version_id = next(self._ids)
        self.versions[version_id] = {"id": version_id, "version": f"v{version_id}", "datasets": payload.get("dataset_ids", []),
                                     "metrics": {}, **payload}
        return dict(self.versions[version_id])

    def get_model_version(self, version_id: int) -> dict:
        self._check()
        if version_id not in self.versions:
            raise AppError("not_found", f"model version {version_id} does not exist", status=404)
        return dict(self.versions[version_id])

    def get_alias(self, name: str) -> dict:
        self._check()
        if name not in self.aliases:
            raise AppError("not_found", f"alias {name} points nowhere yet", status=404)
        return {"name": name, "model_version": self.get_model_version(self.aliases[name])}

    production_version = StorageClient.production_version  # the client's own reading of get_alias

    def set_alias(self, name: str, *, model_version_id: int, actor: str, reason: str) -> dict:
        self.aliases[name] = model_version_id
        self.ledger.append((name, model_version_id, actor, reason))
        return self.get_alias(name)

    def list_samples(self, **filters) -> dict:
        return {"count": len(self.accepted[1]), "results": []}


class FakeCollector:
    def __init__(self, images, labels, storage=None):
        self.images, self.labels = images, labels
        self.storage = storage

    def user_samples(self):
        return self.storage.accepted

    def info(self, source: str | None = None) -> dict:
        if source is None:
            return {"sources": [{"source": "mnist-5k", "splits": ["train"]}, {"source": "user", "splits": ["train"]}]}
        if source == "user":
            return {"source": source, "splits": {"train": {"count": len(self.storage.accepted[1])}}}
        if source != "mnist-5k":
            raise AppError("unknown_source", f"unknown source {source!r}", status=404)
        return {"source": source, "splits": {"train": {"count": len(self.labels), "sha256": "f" * 64}}}

    def batch(self, *, source, split, size, offset):
        end = min(offset + size, len(self.labels))
        return self.images[offset:end], self.labels[offset:end], end if end < len(self.labels) else None
