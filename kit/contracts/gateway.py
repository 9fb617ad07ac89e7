"""What the gateway's public API (/api/v1) answers: documented in `/api/schema/` and checked by its fuzz test.

Records (runs, datasets, versions, samples, predictions) are storage's and ml_svc's shapes, named here so that a
change there is a visible change of the public contract, never a silent one.
"""

# No `from __future__ import annotations` here: Python 3.11's TypedDict cannot see NotRequired in a string.
from typing import Any, Literal, NotRequired, TypedDict

from kit.contracts import Timestamp
from kit.contracts.collector import Upload
from kit.contracts.ml import Explanation, ImageError
from kit.contracts.storage import (
    AliasChange,
    Dataset,
    Delivery,
    Evaluation,
    ModelVersion,
    Prediction,
    RolloutState,
    Run,
    Sample,
    ShadowStats,
    VersionRef,
    Webhook,
)


class Token(TypedDict):
    token: str


class ServiceHealth(TypedDict):
    status: Literal["ok", "unavailable"]
    reason: NotRequired[str]


class Health(TypedDict):
    status: Literal["ok", "degraded"]
    services: dict[str, ServiceHealth]


class PredictionAnswer(TypedDict):
    """One image's answer, recorded in the caller's history as `id`."""

    id: int
    digit: int
    probabilities: list[float]
    model: VersionRef
    image: str
    created_at: Timestamp
    explanation: NotRequired[Explanation]  # with "explain": true


class RecordedClassification(TypedDict):
    id: int
    digit: int
    probabilities: list[float]
    image: str
    created_at: Timestamp


class RefusedImage(TypedDict):
    error: ImageError


class BatchPredictionAnswer(TypedDict):
    """`results` in the order of the images: a recorded answer, or why that image was refused."""

    model: VersionRef
    results: list[RecordedClassification | RefusedImage]


class PredictionPage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[Prediction]


class SamplePage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[Sample]


class RunPage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[Run]


class DatasetPage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[Dataset]


class ModelVersionPage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[ModelVersion]


class AliasChangePage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[AliasChange]


class EvaluationPage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[Evaluation]


class ReportInputs(TypedDict):
    """What a model report is made from (`report.json`)."""

    model: ModelVersion
    datasets: list[Dataset]
    ledger: list[AliasChange]
    evaluations: list[Evaluation]
    production_id: int | None
    software: dict[str, str]


class ModelCard(TypedDict):
    """What a downloadable version is and how to run it: the ONNX file takes canonical pixels and answers
    probabilities, as the API does for a request naming this version."""

    id: int
    version: str
    architecture: str
    hyperparameters: dict[str, Any]
    datasets: list[int]
    parameter_count: int
    created_at: Timestamp
    accuracy: float | None
    evaluated_on: int | None
    weights_sha256: str
    input: str
    output: str
    files: dict[str, str]


class ErrorDetail(TypedDict):
    code: str
    message: str
    details: Any


class Error(TypedDict):
    """Every 4xx and 5xx answer."""

    error: ErrorDetail


class UploadRun(Run):
    """The queued run of an uploaded file (collecting it as a dataset, or scoring it), and what the file holds."""

    upload: Upload


class ErrorItem(TypedDict):
    image: str  # base64 of the 784 bytes the version saw
    confidence: float  # its probability of the cell's predicted digit
    overlay_png: str  # why it answered so (red: towards, blue: away)
    index: NotRequired[int]  # held-out or evaluation: its place in the dataset's part
    prediction: NotRequired[int]  # live: the corrected prediction


class ErrorCellItems(TypedDict):
    true: int
    predicted: int
    count: int
    items: list[ErrorItem]  # at most 48, the most confident first


class ErrorCell(TypedDict):
    """A version's confusion matrix from `source` (rows: the true or corrected label, columns: its answer) and one
    cell's digits if `true` and `predicted` were given."""

    model: VersionRef
    source: str
    count: int
    matrix: list[list[int]]
    cell: ErrorCellItems | None


class Gate(TypedDict):
    """Whether promoting `model_version` to production passes the gate. `exempt` says why no check applies (nothing
    serves yet, already production, served before); else each check: `name` (held_out_accuracy, shadow_agreement),
    `passed`, `summary` and its figures."""

    model_version: int
    production: int | None
    passed: bool
    exempt: str | None
    checks: list[dict[str, Any]]


class Rollout(RolloutState):
    """What serves, the candidate's shadow figures and gate (null without a candidate apart from production), and
    the newest automatic rollback of the past 24 hours."""

    shadow: ShadowStats | None
    gate: Gate | None
    alert: AliasChange | None


class WebhookPage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[Webhook]


class DeliveryPage(TypedDict):
    count: int
    page: int
    has_next: bool
    has_previous: bool
    results: list[Delivery]
