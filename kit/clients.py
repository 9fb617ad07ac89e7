"""One small typed HTTP client per service. Every call has a timeout; only
idempotent calls are retried; a peer that is down, slow or failing becomes
`PeerUnavailable` naming the service, and a peer's 4xx is passed on as AppError."""

from __future__ import annotations

import json
import threading
from typing import Any

import orjson
import requests
import requests.adapters

from kit import imagepack, tracing
from kit.contracts import collector, ml, storage
from kit.errors import AppError, PeerUnavailable
from kit.requestlog import REQUEST_ID_HEADER, current_request_id
from kit.service_auth import SERVICE_TOKEN_HEADER


def _reported_error(response: requests.Response) -> bool:
    """A 5xx that the peer explains itself (e.g. a failed download), rather than the peer failing."""
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code not in {"internal_error", "service_unavailable"}


class ServiceClient:
    """Base client: keep-alive session per thread, timeouts, error mapping."""

    service = "service"

    def __init__(self, base_url: str, token: str, *, timeout: float = 5.0, caller: str = "",
                 transport: requests.adapters.BaseAdapter | None = None):
        """`transport`: what carries the calls instead of HTTP (the contract tests' in-process WSGI adapter)."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.caller = caller
        self.transport = transport
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # peers are direct: no proxy variables or .netrc to read per call
            if self.transport is not None:
                session.mount(self.base_url, self.transport)
            self._local.session = session
        return session

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        if idempotent is None:
            idempotent = method in {"GET", "HEAD", "PUT", "DELETE"}
        all_headers = {SERVICE_TOKEN_HEADER: self.token}
        if self.caller:
            all_headers["X-Caller"] = self.caller
        request_id = current_request_id()
        if request_id:
            all_headers[REQUEST_ID_HEADER] = request_id
        all_headers.update(headers or {})
        span = tracing.client_span(self.service, method, path, all_headers)  # None unless tracing is on
        try:
            response = self._send(method, self.base_url + path, all_headers, 2 if idempotent else 1, timeout, kwargs)
        except PeerUnavailable as exc:
            tracing.end_client_span(span, error=exc.message)
            raise
        except BaseException as exc:  # e.g. a body cut short: the span ends all the same
            tracing.end_client_span(span, error=type(exc).__name__)
            raise
        tracing.end_client_span(span, response.status_code)
        if response.status_code >= 400:
            raise self._peer_error(response)
        return response

    def _send(self, method: str, url: str, all_headers: dict, attempts: int, timeout: float | None,
              kwargs: dict) -> requests.Response:
        for attempt in range(attempts):
            again = True
            try:
                response = self._session().request(
                    method, url, headers=all_headers, timeout=timeout or self.timeout, **kwargs
                )
            except requests.ConnectTimeout:
                reason = f"no connection within {timeout or self.timeout:g} s"
            except requests.Timeout:
                # The peer took the request and may still be working on it: sending it again doubles the work.
                reason, again = f"no answer within {timeout or self.timeout:g} s", False
            except requests.ConnectionError:
                reason = "connection refused or reset"
            else:
                if response.status_code < 500 or _reported_error(response):
                    break
                reason = f"it answered {response.status_code}"
            if attempt == attempts - 1 or not again:
                raise PeerUnavailable(self.service, reason)
        return response

    def _peer_error(self, response: requests.Response) -> AppError:
        try:
            error = response.json()["error"]
            return AppError(
                error.get("code", "error"),
                error.get("message", "error"),
                status=response.status_code,
                details=error.get("details"),
            )
        except (ValueError, KeyError, TypeError):
            return AppError(
                "peer_error",
                f"{self.service} answered {response.status_code}",
                status=response.status_code,
            )

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post_json(self, path: str, payload: Any, **kwargs: Any) -> Any:
        """POST a JSON body and decode the JSON answer (orjson: the prediction path sends many)."""
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        response = self.request("POST", path, data=orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS), headers=headers, **kwargs)
        return orjson.loads(response.content)

    def ready(self) -> None:
        """Raises PeerUnavailable unless the service says it is ready."""
        self.request("GET", "/ready", timeout=2.0)


class StorageClient(ServiceClient):
    service = "storage_svc"

    # Runs
    def create_run(self, *, kind: str, params: dict, created_by: str, parent_run: int | None = None) -> storage.Run:
        return self.post_json("/runs", {"kind": kind, "params": params, "created_by": created_by,
                                        "parent_run": parent_run})

    def get_run(self, run_id: int) -> storage.Run:
        return self.get_json(f"/runs/{run_id}")

    def list_runs(self, **filters: Any) -> storage.RunPage:
        return self.get_json("/runs", params=filters)

    def update_run(self, run_id: int, **fields: Any) -> storage.Run:
        return self.request("PATCH", f"/runs/{run_id}", json=fields, idempotent=True).json()

    # Datasets
    def create_dataset(
        self, data: bytes, *, name: str, source: str, split: str, created_by: str, meta: dict | None = None,
        parents: list[int] | None = None,
    ) -> storage.Dataset:
        params = {"name": name, "source": source, "split": split, "created_by": created_by}
        if meta:
            params["meta"] = json.dumps(meta)
        if parents:
            params["parents"] = ",".join(str(p) for p in parents)
        return self.request(
            "POST",
            "/datasets",
            data=data,
            params=params,
            headers={"Content-Type": imagepack.CONTENT_TYPE},
            timeout=60.0,
        ).json()

    def get_dataset(self, dataset_id: int) -> storage.Dataset:
        return self.get_json(f"/datasets/{dataset_id}")

    def list_datasets(self, **filters: Any) -> storage.DatasetPage:
        return self.get_json("/datasets", params=filters)

    def dataset_arrays(self, dataset_id: int):
        content = self.request("GET", f"/datasets/{dataset_id}/data", timeout=60.0).content
        return imagepack.unpack(content)

    # Blobs
    def put_blob(self, data: bytes) -> storage.StoredBlob:
        return self.request(
            "PUT", "/blobs", data=data, headers={"Content-Type": "application/octet-stream"}, timeout=60.0
        ).json()

    def get_blob(self, sha256: str) -> bytes:
        return self.request("GET", f"/blobs/{sha256}", timeout=60.0).content

    def delete_blob(self, sha256: str) -> storage.BlobDeleted:
        return self.request("DELETE", f"/blobs/{sha256}").json()

    # Model versions and aliases
    def create_model_version(self, payload: dict) -> storage.ModelVersion:
        return self.post_json("/models", payload)

    def get_model_version(self, version_id: int) -> storage.ModelVersion:
        return self.get_json(f"/models/{version_id}")

    def list_model_versions(self, **filters: Any) -> storage.ModelVersionPage:
        return self.get_json("/models", params=filters)

    def annotate_model_version(self, version_id: int, note: str) -> storage.ModelVersion:
        return self.request("PATCH", f"/models/{version_id}", json={"note": note}).json()

    def create_evaluation(self, version_id: int, *, dataset_id: int, run_id: int | None, metrics: dict,
                          created_by: str) -> storage.Evaluation:
        payload = {"dataset_id": dataset_id, "run_id": run_id, "metrics": metrics, "created_by": created_by}
        return self.post_json(f"/models/{version_id}/evaluations", payload)

    def evaluations(self, version_id: int, **filters: Any) -> storage.EvaluationPage:
        return self.get_json(f"/models/{version_id}/evaluations", params=filters)

    def stored_report(self, version_id: int, *, kind: str, input_sha256: str) -> bytes | None:
        try:
            return self.request("GET", f"/models/{version_id}/report",
                                params={"kind": kind, "input_sha256": input_sha256}, timeout=30.0).content
        except AppError as exc:
            if exc.status == 404:
                return None
            raise

    def store_report(self, version_id: int, data: bytes, *, kind: str, input_sha256: str) -> None:
        self.request("PUT", f"/models/{version_id}/report", params={"kind": kind, "input_sha256": input_sha256},
                     data=data, headers={"Content-Type": "application/octet-stream"}, timeout=30.0)

    def get_alias(self, name: str) -> storage.Alias:
        return self.get_json(f"/aliases/{name}")

    def production_version(self) -> storage.ModelVersion | None:
        """The version the `production` alias points at, or None while nothing serves."""
        try:
            return self.get_alias("production")["model_version"]
        except AppError as exc:
            if exc.status == 404:
                return None
            raise

    def set_alias(self, name: str, *, model_version_id: int, actor: str, reason: str, action: str = "move",
                  details: dict | None = None) -> storage.Alias:
        payload = {"model_version_id": model_version_id, "actor": actor, "reason": reason, "action": action,
                   "details": details or {}}
        return self.post_json(f"/aliases/{name}", payload)

    def rollout(self) -> storage.RolloutState:
        return self.get_json("/rollout")

    def set_canary(self, *, share: float, actor: str, reason: str) -> storage.RolloutState:
        return self.post_json("/rollout/canary", {"share": share, "actor": actor, "reason": reason})

    def shadow(self, version_id: int) -> storage.ShadowStats:
        return self.get_json(f"/models/{version_id}/shadow")

    def drift(self, version_id: int, days: int = 7) -> storage.Drift:
        return self.get_json(f"/models/{version_id}/drift", params={"days": days})

    def production_drift(self) -> storage.ProductionDrift:
        return self.get_json("/drift/production")

    # Events and webhooks
    def emit_event(self, event_type: str, data: dict) -> storage.EventRecorded:
        return self.post_json("/events", {"type": event_type, "data": data})

    def webhooks(self, **filters: Any) -> storage.WebhookPage:
        return self.get_json("/webhooks", params=filters)

    def create_webhook(self, *, url: str, events: list[str], created_by: str) -> storage.NewWebhook:
        return self.post_json("/webhooks", {"url": url, "events": events, "created_by": created_by})

    def delete_webhook(self, webhook_id: int) -> None:
        self.request("DELETE", f"/webhooks/{webhook_id}")

    def deliveries(self, **filters: Any) -> storage.DeliveryPage:
        return self.get_json("/webhooks/deliveries", params=filters)

    def claim_deliveries(self, *, limit: int, lease_s: float) -> list[storage.ClaimedDelivery]:
        return self.post_json("/webhooks/deliveries/claim", {"limit": limit, "lease_s": lease_s})["deliveries"]

    def delivery_result(self, delivery_id: int, *, attempt: int, status_code: int | None, error: str) -> storage.Delivery:
        return self.post_json(f"/webhooks/deliveries/{delivery_id}/result",
                              {"attempt": attempt, "status_code": status_code, "error": error})

    def alias_ledger(self, **filters: Any) -> storage.AliasChangePage:
        return self.get_json("/aliases/ledger", params=filters)

    # User samples
    def accepted_samples(self):
        """Every accepted user sample as (images, labels), oldest first."""
        content = self.request("GET", "/samples/export", params={"status": "accepted"}, timeout=60.0).content
        return imagepack.unpack(content)

    def create_sample(self, payload: dict) -> storage.Sample:
        return self.post_json("/samples", payload)

    def create_samples(self, samples: list[dict]) -> storage.SamplesCreated:
        """Several labelled images pending review, all or none."""
        return self.post_json("/samples/bulk", {"samples": samples})

    def live_errors(self, version_id: int, **params: Any) -> storage.LiveErrors:
        """A version's corrected live predictions as a confusion matrix, and one cell's."""
        return self.get_json(f"/models/{version_id}/errors", params=params)

    def list_samples(self, **filters: Any) -> storage.SamplePage:
        return self.get_json("/samples", params=filters)

    def review_sample(self, sample_id: int, *, status: str, reviewer: str) -> storage.Sample:
        return self.post_json(f"/samples/{sample_id}/review", {"status": status, "reviewer": reviewer})

    def prediction_feedback(self, prediction_id: int, *, label: int, user: str) -> storage.Sample:
        return self.post_json(f"/predictions/{prediction_id}/feedback", {"label": label, "user": user})

    def get_prediction(self, prediction_id: int) -> storage.Prediction:
        return self.get_json(f"/predictions/{prediction_id}")

    # Predictions
    def create_predictions(self, items: list[dict]) -> list[storage.Recorded]:
        """Record answered predictions in one transaction; each one's {"id", "created_at"}, in order.
        Items carrying a `request_key` are recorded once however often the call is repeated."""
        answer = self.post_json("/predictions/bulk", {"predictions": items})
        return [{"id": i, "created_at": t} for i, t in zip(answer["ids"], answer["created_at"], strict=True)]

    def prediction_stats(self, days: int = 14) -> storage.PredictionStats:
        return self.get_json("/predictions/stats", params={"days": days})

    def list_predictions(self, **filters: Any) -> storage.PredictionPage:
        return self.get_json("/predictions", params=filters)


class CollectorClient(ServiceClient):
    service = "collector_svc"

    def sources(self) -> collector.Sources:
        return self.get_json("/info")

    def source(self, name: str) -> collector.Source:
        """One source with its splits' sizes and digests (hashing a large split the first time takes a while)."""
        return self.get_json("/info", params={"source": name}, timeout=120.0)

    def user_samples(self):
        """Every accepted user sample, as (images, labels), through the collector's `user` source."""
        images, labels, _ = self.batch(source="user", split="train", size=10000, offset=0)
        return images, labels

    def request_log(self, limit: int = 100) -> collector.RequestLog:
        return self.get_json("/log", params={"limit": limit})

    def batch(self, *, source: str, split: str, size: int, offset: int):
        """One batch as (images, labels, next_offset or None)."""
        response = self.request(
            "GET",
            "/batch",
            params={"source": source, "split": split, "size": size, "offset": offset},
            timeout=30.0,
        )
        images, labels = imagepack.unpack(response.content)
        next_offset = response.headers.get("X-Next-Offset") or None
        return images, labels, int(next_offset) if next_offset else None

    def upload(self, files: list[tuple[str, bytes]], *, purpose: str, uploaded_by: str, name: str = "") -> collector.Upload:
        """Hand over an uploaded file (two for an IDX pair): checked whole, then kept until a run reads it."""
        response = self.request(
            "POST", "/uploads", files=[("file", (file_name, data)) for file_name, data in files],
            data={"purpose": purpose, "uploaded_by": uploaded_by, "name": name}, timeout=120.0,
        )
        return response.json()

    def get_upload(self, upload_id: str) -> collector.Upload:
        return self.get_json(f"/uploads/{upload_id}")

    def upload_batch(self, upload_id: str, *, offset: int, size: int) -> collector.UploadBatch:
        """Items of an upload, each a canonical 28x28 image (base64) with its label, or why it could not be read."""
        return self.get_json(f"/uploads/{upload_id}/batch", params={"offset": offset, "size": size}, timeout=120.0)

    def forget_upload(self, upload_id: str) -> None:
        self.request("DELETE", f"/uploads/{upload_id}")


EXPLAIN_TIMEOUT_S = 10.0  # an explanation may first load its version


class MLClient(ServiceClient):
    service = "ml_svc"

    def architectures(self) -> ml.Architectures:
        return self.get_json("/architectures")

    def predict_batch(self, payload: dict, timeout: float | None = None) -> ml.BatchAnswer:
        # Predicting is read-only for ml_svc, so one retry on a dropped connection is safe.
        return self.post_json("/predict/batch", payload, idempotent=True, timeout=timeout)

    def compare(self, baseline_id: int, candidate_id: int) -> ml.Comparison:
        return self.get_json("/compare", params={"baseline": baseline_id, "candidate": candidate_id}, timeout=30.0)

    def start_fine_tune(self, *, base_model_id: int, hyperparameters: dict, created_by: str) -> storage.Run:
        payload = {"base_model_id": base_model_id, "hyperparameters": hyperparameters, "created_by": created_by}
        return self.post_json("/jobs/fine-tune", payload)

    def model_onnx(self, version_id: int) -> bytes:
        """The version as a self-contained ONNX file (canonical 28x28 pixels 0-255 in, probabilities out)."""
        return self.request("GET", f"/models/{version_id}/onnx", timeout=60.0).content

    def explain(self, *, image: str, model_id: int, target: int | None = None) -> ml.Explanation:
        """Why a version answers what it does for a canonical image (a pure computation: safe to send again)."""
        return self.request("POST", "/explain", json={"image": image, "model_id": model_id, "target": target},
                            idempotent=True, timeout=EXPLAIN_TIMEOUT_S).json()

    def errors(self, version_id: int, *, dataset_id: int | None = None, part: str = "held-out",
               true: int | None = None, predicted: int | None = None) -> ml.ConfusionCell:
        """A version's confusion matrix on a dataset (default: its held-out digits) and one cell's digits."""
        return self.request("POST", f"/models/{version_id}/errors", idempotent=True, timeout=EXPLAIN_TIMEOUT_S * 3,
                            json={"dataset_id": dataset_id, "part": part, "true": true, "predicted": predicted}).json()

    def overlays(self, *, model_id: int, images: list[str], target: int | None = None) -> ml.Overlays:
        """Why a version answers what it does for each of several canonical images."""
        return self.request("POST", "/overlays", json={"model_id": model_id, "images": images, "target": target},
                            idempotent=True, timeout=EXPLAIN_TIMEOUT_S * 3).json()

    def canonicalize(self, payload: dict) -> ml.CanonicalImage:
        """The canonical 28x28 image of an upload, as ml_svc would see it."""
        return self.request("POST", "/canonicalize", json=payload, idempotent=True).json()

    def start_evaluation(self, *, model_id: int, dataset_id: int, created_by: str) -> storage.Run:
        """Queue an evaluation of a version on every image of a dataset."""
        return self.post_json("/jobs/evaluate", {"model_id": model_id, "dataset_id": dataset_id, "created_by": created_by})

    def start_collect(self, **params: Any) -> storage.Run:
        """Queue a collect-and-store run: source, split, batch_size, max_samples, created_by (and for the `upload`
        source, the upload's id as `upload`)."""
        return self.post_json("/jobs/collect", params)

    def start_infer(self, *, upload: str, model_id: int | None, created_by: str) -> storage.Run:
        """Queue the scoring of an uploaded file's images (by production's version unless `model_id` names one)."""
        return self.post_json("/jobs/infer", {"upload": upload, "model_id": model_id, "created_by": created_by})

    def start_sweep(self, **params: Any) -> storage.Run:
        """Queue a hyperparameter sweep: dataset_id, architecture, search_space, trials, max_parallel,
        time_budget_s, hyperparameters (fixed), seed, created_by."""
        return self.post_json("/jobs/sweep", params)

    def sweep(self, run_id: int) -> ml.Sweep:
        """A sweep's trials and the plotly figures of its search."""
        return self.get_json(f"/sweeps/{run_id}", timeout=30.0)

    def start_training(self, *, dataset_id: int, architecture: str | None, hyperparameters: dict, created_by: str) -> storage.Run:
        payload = {
            "dataset_id": dataset_id,
            "architecture": architecture,
            "hyperparameters": hyperparameters,
            "created_by": created_by,
        }
        return self.post_json("/jobs/train", payload)
