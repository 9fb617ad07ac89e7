"""In-memory peers for the gateway's tests, replacing the typed clients (the seam)."""

from __future__ import annotations

import base64
import itertools

import numpy as np

from kit.clients import CollectorClient, MLClient, StorageClient
from kit.contracts import collector, example, ml, storage
from kit.errors import AppError, PeerUnavailable
from kit.fakecheck import answering_as


class Peer:
    service = "peer"

    def __init__(self):
        self.down = False

    def _check(self):
        if self.down:
            raise PeerUnavailable(self.service, "connection refused or reset")

    def ready(self):
        self._check()


class FakeML(Peer):
    service = "ml_svc"
    sees_blank = False
    no_model = False
    default_architecture = "cnn"
    comparison: dict = {}  # a test's figures for compare()
    canary_users: frozenset = frozenset()  # users the candidate (v2) answers
    shadow: dict | None = None  # the candidate's shadow answer to every other live prediction

    def __init__(self):
        super().__init__()
        self.routes: list = []  # the `route` of every image predict_batch was sent
        self.explained: list[tuple] = []  # (image, model_id, target) of every explanation asked for
        self.overlaid: list[tuple] = []  # (model_id, images, target) of every batch of overlays asked for

    def _answer(self, payload):
        self._check()
        if payload.get("pixels") == "blank":
            raise AppError("blank_image", "The image is blank: draw a digit.", status=422)
        probabilities = [0.01] * 10
        probabilities[7] = 0.91
        return {"digit": 7, "probabilities": probabilities, "model": {"id": 1, "version": "v1"},
                "image": base64.b64encode(bytes(784)).decode(), "latency_ms": 1.0}

    def predict_batch(self, payload, timeout=None):
        self._check()
        if self.no_model:
            raise AppError("no_model", "No model is serving yet: train one and promote it to production.", status=503)
        one = self._answer({})
        results = [
            {"error": {"code": "blank_image", "message": "The image is blank: draw a digit.", "status": 422}}
            if image.get("pixels") == "blank" else {k: one[k] for k in ("digit", "probabilities", "image")}
            for image in payload["images"]
        ]
        for image, result in zip(payload["images"], results, strict=True):  # the rollout, as ml_svc applies it
            if "digit" not in result or not image.get("route") or payload.get("model_id") is not None:
                continue
            if image["route"] in self.canary_users:
                result["model"] = {"id": 2, "version": "v2"}
            elif self.shadow is not None:
                result["shadow"] = dict(self.shadow)
        self.routes.extend(image.get("route") for image in payload["images"])
        return {"model": one["model"], "results": results, "latency_ms": 2.0}

    def start_fine_tune(self, **params):
        self._check()
        return example(storage.Run, id=13, kind="fine-tune", params=params, created_by=params["created_by"])

    def explain(self, *, image, model_id, target=None):
        self._check()
        self.explained.append((image, model_id, target))
        return example(ml.Explanation, model={"id": model_id, "version": f"v{model_id}"}, target=target or 0,
                       digit=target or 0, attribution=[[0.0] * 28 for _ in range(28)], overlay_png="iVBORw0KGgo=",
                       nearest=[{"label": target or 0, "similarity": 0.99 - n / 10,
                                 "image": base64.b64encode(bytes([n]) * 784).decode()} for n in range(5)])

    # Its error browser: every version answers 48 of each digit rightly, and (true 4, answered 9) twice.
    ERROR_MATRIX = [[48 if t == p else (2 if (t, p) == (4, 9) else 0) for p in range(10)] for t in range(10)]

    def errors(self, version_id, *, dataset_id=None, part="held-out", true=None, predicted=None):
        self._check()
        cell = None
        if true is not None and predicted is not None:
            count = self.ERROR_MATRIX[true][predicted]
            cell = {"true": true, "predicted": predicted, "count": count, "items": [
                {"index": n, "image": base64.b64encode(bytes([true * 10 + n]) * 784).decode(), "confidence": 0.9 - n / 100}
                for n in range(min(count, 48))]}
        return example(ml.ConfusionCell, model={"id": version_id, "version": f"v{version_id}"}, dataset_id=dataset_id or 1,
                       part=part, count=sum(map(sum, self.ERROR_MATRIX)), matrix=self.ERROR_MATRIX, cell=cell)

    def overlays(self, *, model_id, images, target=None):
        self._check()
        self.overlaid.append((model_id, list(images), target))
        return {"overlays": [{"digit": target or 0, "target": target or 0, "overlay_png": "iVBORw0KGgo="} for _ in images]}

    def compare(self, baseline_id, candidate_id):
        self._check()
        return example(ml.Comparison, **{"baseline": {"id": baseline_id, "version": f"v{baseline_id}"},
                                         "candidate": {"id": candidate_id, "version": f"v{candidate_id}"},
                                         "accuracy": {"baseline": 0.98, "candidate": 0.99, "delta": 0.01},
                                         **self.comparison})

    def architectures(self):
        self._check()
        epochs = {"name": "epochs", "type": "int", "default": 25, "minimum": 1, "maximum": 200, "help": "passes"}
        augment = {"name": "augment", "type": "bool", "default": True, "minimum": None, "maximum": None, "help": "shifts"}
        rate = {"name": "learning_rate", "type": "float", "default": 0.006, "minimum": 1e-5, "maximum": 1.0, "help": "peak"}
        return {"architectures": [{"name": "cnn", "title": "Compact CNN", "hyperparameters": [epochs, rate, augment]},
                                  {"name": "mlp", "title": "MLP", "hyperparameters": [epochs]}],
                "default": self.default_architecture,
                "fine_tune": [epochs, {"name": "replay_size", "type": "int", "default": 2000, "minimum": 0,
                                       "maximum": 100000, "help": "replay"}]}

    def model_onnx(self, version_id):
        self._check()
        return b"onnx-of-v%d" % version_id

    def canonicalize(self, payload):
        self._check()
        if self.sees_blank:
            raise AppError("blank_image", "The image is blank: draw a digit.", status=422)
        return {"image": base64.b64encode(bytes(784)).decode()}

    def start_evaluation(self, *, model_id, dataset_id, created_by):
        self._check()
        return example(storage.Run, id=14, kind="evaluate", params={"model_id": model_id, "dataset_id": dataset_id},
                       created_by=created_by)

    def start_collect(self, **params):
        self._check()
        return example(storage.Run, id=11, kind="collect", params=params, created_by=params["created_by"])

    def start_sweep(self, **params):
        self._check()
        if "colour" in params["search_space"]:
            raise AppError("invalid_search_space", "search_space.colour: cnn has no hyperparameter 'colour' to search",
                           details={"search_space.colour": "cnn has no hyperparameter 'colour' to search"})
        return example(storage.Run, id=16, kind="sweep", params=params, created_by=params["created_by"])

    def sweep(self, run_id):
        self._check()
        trial = example(ml.SweepTrial, number=0, run=41, state="complete", params={"width": 12}, value=0.9312,
                        epochs=3, intermediate=[0.8, 0.9, 0.9312], duration_s=12.5)
        figure = {"data": [{"type": "scatter", "x": [0], "y": [0.9312]}], "layout": {"title": {"text": "history"}}}
        return example(ml.Sweep, sweep=run_id, study=f"sweep-{run_id}", trials=[trial],
                       charts={"history": figure, "parallel": figure, "importances": None})

    def start_infer(self, *, upload, model_id, created_by):
        self._check()
        if model_id == 404:
            raise AppError("not_found", "model version 404 does not exist", status=404)
        return example(storage.Run, id=15, kind="infer", params={"upload": upload, "model_id": model_id or 1},
                       created_by=created_by)

    def start_training(self, **params):
        self._check()
        if params["hyperparameters"].get("epochs", 1) > 200:
            raise AppError("invalid_hyperparameters", "invalid hyperparameters: epochs",
                           details={"epochs": "must be at most 200"})
        return example(storage.Run, id=12, kind="train", params=params, created_by=params["created_by"])


def page(items, page=1, page_size=50):
    """A page as storage_svc answers it, with its internal links."""
    start = (page - 1) * page_size
    link = "http://127.0.0.1:8002/aliases/ledger?page={}"
    return {"count": len(items), "next": link.format(page + 1) if start + page_size < len(items) else None,
            "previous": link.format(page - 1) if page > 1 else None, "results": items[start:start + page_size]}


class FakeStorage(Peer):
    service = "storage_svc"

    def __init__(self):
        super().__init__()
        self.predictions: list[dict] = []
        self.runs = {5: example(storage.Run, id=5, kind="train", status="running", progress=0.5, message="epoch 1/2",
                                created_by="engineer")}
        self.aliases: list[tuple] = []
        self.samples: list[dict] = []
        self.versions: dict[int, dict] = {}
        self.alias_targets: dict[str, int] = {}
        self.reports: dict[tuple, bytes] = {}
        self.ledger: list[dict] = []
        self.evaluation_rows: list[dict] = []
        self.request_keys: dict[str, dict] = {}
        self.blobs: dict[str, bytes] = {}
        self.shadow_figures: dict[int, dict] = {}  # a test's live figures per version for shadow()
        self.events: list[tuple] = []  # (type, data) emitted for the webhooks
        self.shadows: dict[int, dict] = {}  # prediction id -> the candidate's shadow answer recorded with it
        self.hooks: dict[int, dict] = {}
        self.delivery_rows: list[dict] = []
        self.today: dict | None = None  # today's drift of production (a storage.ProductionDay)
        self._ids = itertools.count(1)

    def _stored_row(self, payload):
        self._check()
        row = example(storage.Prediction, id=next(self._ids), digit=payload["digit"],
                      probabilities=payload["probabilities"], confidence=max(payload["probabilities"]),
                      model={"id": payload["model_version_id"], "version": f"v{payload['model_version_id']}"},
                      latency_ms=payload["latency_ms"], user=payload["user"], image=payload["image_b64"])
        self.predictions.insert(0, row)
        if payload.get("shadow"):  # kept aside: storage records it, but a prediction's contract never shows it
            self.shadows[row["id"]] = payload["shadow"]
        return row

    def list_predictions(self, **filters):
        self._check()
        rows = [p for p in self.predictions if "user" not in filters or p["user"] == filters["user"]]
        return page(rows)

    def list_runs(self, **filters):
        self._check()
        return page([r for r in self.runs.values() if "created_by" not in filters or r["created_by"] == filters["created_by"]])

    def get_run(self, run_id):
        self._check()
        if run_id not in self.runs:
            raise AppError("not_found", f"run {run_id} does not exist", status=404)
        return self.runs[run_id]

    def update_run(self, run_id, **fields):
        self.get_run(run_id)
        self.runs[run_id].update(fields)
        return self.runs[run_id]

    def prediction_stats(self, days=14):
        self._check()
        return {"days": days, "series": [
            {"day": "2026-11-22", "model_version_id": 1, "count": 4, "digits": [1, 0, 0, 0, 0, 0, 0, 3, 0, 0],
             "mean_confidence": 0.91, "correction_rate": 0.25},
            {"day": "2026-11-23", "model_version_id": 2, "count": 2, "digits": [0, 0, 0, 0, 0, 0, 0, 2, 0, 0],
             "mean_confidence": 0.95, "correction_rate": 0.0}]}

    def create_predictions(self, items):
        self._check()
        stored = []
        for item in items:
            key = item.get("request_key")
            row = self.request_keys.get(key) or self._stored_row(item)
            if key:
                self.request_keys[key] = row
            stored.append({"id": row["id"], "created_at": row["created_at"]})
        return stored

    def get_prediction(self, prediction_id):
        self._check()
        for row in self.predictions:
            if row["id"] == prediction_id:
                return row
        raise AppError("not_found", f"prediction {prediction_id} does not exist", status=404)

    def prediction_feedback(self, prediction_id, *, label, user):
        row = next(p for p in self.predictions if p["id"] == self.get_prediction(prediction_id)["id"])
        row["corrected_label"] = label
        return self.create_sample({"image_b64": row["image"], "label": label, "user": user, "prediction_id": prediction_id})

    def create_sample(self, payload):
        self._check()
        sample = example(storage.Sample, id=next(self._ids), image=payload["image_b64"], label=payload["label"],
                         user=payload["user"], prediction=payload.get("prediction_id"))
        self.samples.append(sample)
        return sample

    def create_samples(self, samples):
        self._check()
        for n, sample in enumerate(samples):  # storage refuses all when one is not 784 bytes of base64
            try:
                size = len(base64.b64decode(sample["image_b64"], validate=True))
            except ValueError:
                size = -1
            if size != 784:
                raise AppError("invalid", "image must be 784 bytes", details={f"samples[{n}].image_b64": "not 784 bytes"})
        created = [self.create_sample(sample) for sample in samples]
        return {"created": len(created), "samples": created}

    def live_errors(self, version_id, **params):
        self._check()
        self.get_model_version(version_id)
        corrected = [p for p in self.predictions if p["model"]["id"] == version_id and p.get("corrected_label") is not None
                     and p.get("run") is None]
        matrix = [[0] * 10 for _ in range(10)]
        for p in corrected:
            matrix[p["corrected_label"]][p["digit"]] += 1
        cell = None
        if "true" in params:
            members = [p for p in corrected if (p["corrected_label"], p["digit"]) == (params["true"], params["predicted"])]
            cell = {"true": params["true"], "predicted": params["predicted"], "count": len(members),
                    "items": [{"prediction": p["id"], "image": p["image"], "confidence": p["confidence"]} for p in members]}
        return {"count": len(corrected), "matrix": matrix, "cell": cell}

    def list_samples(self, **filters):
        self._check()
        return page([s for s in self.samples if s["status"] == filters.get("status", s["status"])])

    def review_sample(self, sample_id, *, status, reviewer):
        for sample in self.samples:
            if sample["id"] == sample_id:
                sample.update(status=status, reviewed_by=reviewer, reviewed_at="2026-01-02T00:00:00Z")
                return sample
        raise AppError("not_found", f"sample {sample_id} does not exist", status=404)

    def list_datasets(self, **filters):
        self._check()
        return page([example(storage.Dataset, name="mnist-5k-train", source="mnist-5k", num_samples=5000,
                             class_counts={str(d): 500 for d in range(10)}, sha256="ab" * 32, created_by="system",
                             meta={"validation": {"fraction": 0.1, "seed": 0, "validation": 500}})])

    def dataset_arrays(self, dataset_id):
        self._check()
        images = (np.arange(3 * 784) % 256).astype(np.uint8).reshape(3, 28, 28)
        return images, np.array([3, 1, 4], np.uint8)

    def get_blob(self, sha256):
        self._check()
        return self.blobs.get(sha256, b"weights:" + sha256.encode())

    def get_dataset(self, dataset_id):
        self._check()
        return self.list_datasets()["results"][0] | {"id": dataset_id}

    def list_model_versions(self, **filters):
        self._check()
        return page([self.get_model_version(1)])

    def get_model_version(self, version_id):
        self._check()
        if version_id in self.versions:
            return self.versions[version_id]
        return example(storage.ModelVersion, id=version_id, version=f"v{version_id}", architecture="cnn")

    def annotate_model_version(self, version_id, note):
        self.versions.setdefault(version_id, self.get_model_version(version_id))["note"] = note
        return self.versions[version_id]

    def get_alias(self, name):
        self._check()
        if name not in self.alias_targets:
            raise AppError("not_found", f"alias {name} points nowhere yet", status=404)
        return example(storage.Alias, name=name, model_version=self.get_model_version(self.alias_targets[name]))

    production_version = StorageClient.production_version  # the client's own reading of get_alias

    def stored_report(self, version_id, *, kind, input_sha256):
        self._check()
        return self.reports.get((version_id, kind, input_sha256))

    def store_report(self, version_id, data, *, kind, input_sha256):
        self.reports[(version_id, kind, input_sha256)] = data

    def set_alias(self, name, *, model_version_id, actor, reason, action="move", details=None):
        self._check()
        self.aliases.append((name, model_version_id, actor, reason))
        self.ledger.insert(0, example(storage.AliasChange, id=next(self._ids), alias=name, action=action,
                                      from_version=self.alias_targets.get(name), to_version=model_version_id,
                                      actor=actor, reason=reason, details=details or {}))
        self.alias_targets[name] = model_version_id
        return example(storage.Alias, name=name, model_version=self.get_model_version(model_version_id))

    canary_share = 0.0

    def rollout(self):
        self._check()
        versions = {name: self.get_model_version(self.alias_targets[name]) if name in self.alias_targets else None
                    for name in ("production", "candidate")}
        return example(storage.RolloutState, **versions, canary_share=self.canary_share)

    def set_canary(self, *, share, actor, reason):
        self._check()
        if "candidate" not in self.alias_targets:
            raise AppError("no_candidate", "There is no candidate to send traffic to: train one first.", status=409)
        self.ledger.insert(0, example(storage.AliasChange, id=next(self._ids), alias="candidate", action="canary",
                                      to_version=self.alias_targets["candidate"], actor=actor, reason=reason,
                                      details={"from": self.canary_share, "to": share}))
        self.canary_share = share
        return self.rollout()

    def emit_event(self, event_type, data):
        self._check()
        self.events.append((event_type, data))
        return {"id": len(self.events)}

    def webhooks(self, **filters):
        self._check()
        return page(list(self.hooks.values()), filters.get("page", 1), filters.get("page_size", 50))

    def create_webhook(self, *, url, events, created_by):
        self._check()
        if not url.startswith("https://"):
            raise AppError("invalid_destination", "webhooks are delivered over HTTPS only.", details={"url": "HTTPS only"})
        hook = example(storage.Webhook, id=next(self._ids), url=url, events=sorted(set(events)), active=True,
                       created_by=created_by)
        self.hooks[hook["id"]] = hook
        return {**hook, "secret": "f" * 64}

    def delete_webhook(self, webhook_id):
        self._check()
        if self.hooks.pop(webhook_id, None) is None:
            raise AppError("not_found", f"webhook {webhook_id} does not exist", status=404)

    def deliveries(self, **filters):
        self._check()
        return page(self.delivery_rows, filters.get("page", 1), filters.get("page_size", 50))

    def drift(self, version_id, days=7):
        self._check()
        self.get_model_version(version_id)
        days = [{k: v for k, v in self.today.items() if k != "model_version"}] if self.today else []
        return example(storage.Drift, model_version=version_id, days=days)

    def production_drift(self):
        self._check()
        return {"drift": self.today}

    def shadow(self, version_id):
        self._check()
        self.get_model_version(version_id)
        confusion = [[0] * 10 for _ in range(10)]
        return self.shadow_figures.get(version_id) or example(storage.ShadowStats, model_version=version_id,
                                                              confusion=confusion)

    def evaluations(self, version_id, **filters):
        self._check()
        self.get_model_version(version_id)
        return page([e for e in self.evaluation_rows if e["model_version"] == version_id], filters.get("page", 1),
                    filters.get("page_size", 50))

    def alias_ledger(self, **filters):
        self._check()
        version = filters.get("version")
        changes = [c for c in self.ledger if version in (None, c.get("to_version"), c.get("from_version"))
                   and filters.get("alias") in (None, c.get("alias")) and filters.get("action") in (None, c.get("action"))]
        return page(changes, filters.get("page", 1), filters.get("page_size", 50))


class FakeCollector(Peer):
    service = "collector_svc"

    def __init__(self):
        super().__init__()
        self.uploaded: list[dict] = []
        self.forgotten: list[str] = []

    def forget_upload(self, upload_id):
        self.forgotten.append(upload_id)

    def upload(self, files, *, purpose, uploaded_by, name=""):
        """Takes what it is given, but refuses a file named `evil.zip` as the collector refuses unsafe names."""
        self._check()
        if any(file_name == "evil.zip" for file_name, _ in files):
            raise AppError("unsafe_name", "The member '../x.png' has an unsafe name (absolute, `..` or a drive).",
                           details={"member": "../x.png"})
        self.uploaded.append({"files": files, "purpose": purpose, "uploaded_by": uploaded_by, "name": name})
        return example(collector.Upload, id="e" * 32, purpose=purpose, count=3, labelled=3,
                       class_counts={str(d): int(d in (1, 3, 4)) for d in range(10)}, name=name or "digits",
                       files=[{"name": n, "bytes": len(d), "sha256": "b" * 64} for n, d in files],
                       uploaded_by=uploaded_by)

    def sources(self):
        self._check()
        return {"sources": [{"source": "mnist-5k", "description": "5,000 digits", "splits": ["train"]}]}

    def request_log(self, limit=100):
        self._check()
        return {"entries": [{"time": "2026-01-01T00:00:00Z", "caller": "ml_svc", "method": "GET", "path": "/batch",
                             "query": "source=mnist-5k&size=1000", "status": 200, "rows": 1000, "bytes": 784256, "latency_ms": 3.2}]}


# Every answer of the fakes is checked against the real client's contract (kit.contracts).
FakeML = answering_as(FakeML, MLClient)
FakeStorage = answering_as(FakeStorage, StorageClient)
FakeCollector = answering_as(FakeCollector, CollectorClient)
