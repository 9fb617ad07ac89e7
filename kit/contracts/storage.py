"""What storage_svc answers (kit.clients.StorageClient's return types; storage_svc/registry/serializers.py)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from kit.contracts import Timestamp

RunKind = Literal["collect", "train", "fine-tune", "evaluate", "infer", "sweep"]
RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
SampleStatus = Literal["pending", "accepted", "rejected"]
AliasName = Literal["production", "candidate"]


class StoredBlob(TypedDict):
    sha256: str
    size: int


class Dataset(TypedDict):
    id: int
    name: str
    source: str
    split: Literal["train", "val", "test"]
    num_samples: int
    class_counts: dict[str, int]
    sha256: str
    parents: list[int]
    meta: dict[str, Any]
    created_by: str
    created_at: Timestamp


class Run(TypedDict):
    """A job (collect, train, fine-tune, evaluate, score a file, sweep): its status, progress, per-epoch metrics and
    result; a sweep's trials name it as their `parent_run`."""

    id: int
    kind: RunKind
    params: dict[str, Any]
    status: RunStatus
    progress: float
    message: str
    epochs: list[dict[str, Any]]
    result: dict[str, Any]
    error: str
    created_by: str
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    heartbeat_at: Timestamp | None
    parent_run: int | None


class ModelVersion(TypedDict):
    id: int
    version: str
    architecture: str
    hyperparameters: dict[str, Any]
    datasets: list[int]
    base_version: int | None
    metrics: dict[str, Any]
    weights_sha256: str
    weights_size: int
    nearest_index_sha256: str | None  # its nearest-examples index (ml_svc), None if registered before they existed
    parameter_count: int
    run: int | None
    note: str
    aliases: list[AliasName]
    created_by: str
    created_at: Timestamp


class Alias(TypedDict):
    name: AliasName
    model_version: ModelVersion
    traffic_share: float  # the candidate's canary: the share of users it answers (0-0.5); 0 on production
    updated_at: Timestamp


LedgerAction = Literal["move", "override", "auto-rollback", "canary"]


class AliasChange(TypedDict):
    """One move of an alias: who pointed it from which version to which, and why."""

    id: int
    alias: AliasName
    action: LedgerAction
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    details: dict[str, Any]  # override: the gate's figures; auto-rollback: the correction rates; canary: from, to
    changed_at: Timestamp


class RolloutState(TypedDict):
    """What serves: production, the candidate, and the share of users the candidate answers."""

    production: ModelVersion | None
    candidate: ModelVersion | None
    canary_share: float


class BothVersions(TypedDict):
    production: float | None
    candidate: float | None


class CorrectedShadow(TypedDict):
    count: int
    production_accuracy: float | None
    candidate_accuracy: float | None


class Answered(TypedDict):
    count: int
    corrected: int


class ShadowStats(TypedDict):
    """A version's live record: its shadow answers beside the versions that answered (agreement, confusion
    rows = production's digit, columns = this version's), and its own answers (canary or production) and
    corrections of them."""

    model_version: int
    count: int
    agreement: float | None
    against_versions: list[int]
    confusion: list[list[int]]
    mean_confidence: BothVersions
    corrected: CorrectedShadow
    answered: Answered


class Evaluation(TypedDict):
    """A version measured on a whole dataset (the evaluate scenario): `metrics` as evaluation.py reports them."""

    id: int
    model_version: int
    dataset: int
    run: int | None
    metrics: dict[str, Any]
    created_by: str
    created_at: Timestamp


class EvaluationPage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[Evaluation]


class VersionRef(TypedDict):
    id: int
    version: str


class Prediction(TypedDict):
    """A recorded prediction; `image` is the base64 of the 28x28 uint8 input the model saw."""

    id: int
    digit: int
    probabilities: list[float]
    confidence: float
    model: VersionRef
    latency_ms: float
    user: str
    created_at: Timestamp
    corrected_label: int | None
    run: int | None
    image: str


class RecordedPredictions(TypedDict):
    """The ids and times of a bulk write, in the order of its rows."""

    ids: list[int]
    created_at: list[Timestamp]


class Recorded(TypedDict):
    id: int
    created_at: Timestamp


class DayOfPredictions(TypedDict):
    day: str
    model_version_id: int
    count: int
    digits: list[int]
    mean_confidence: float
    correction_rate: float


class PredictionStats(TypedDict):
    days: int
    series: list[DayOfPredictions]


class Sample(TypedDict):
    """A user's labelled drawing; `image` is the base64 of its 28x28 uint8 canonical form."""

    id: int
    label: int
    user: str
    status: SampleStatus
    prediction: int | None
    confidence: float | None  # the corrected prediction's confidence (None: a drawn sample)
    reviewed_by: str
    reviewed_at: Timestamp | None
    created_at: Timestamp
    image: str


class SamplesCreated(TypedDict):
    created: int
    samples: list[Sample]


class LiveErrorItem(TypedDict):
    prediction: int
    image: str
    confidence: float


class LiveErrorCell(TypedDict):
    true: int  # the label a person gave
    predicted: int  # the version's answer
    count: int
    items: list[LiveErrorItem]  # at most 48, the most confident first


class LiveErrors(TypedDict):
    """A version's corrected live predictions: rows the corrected label, columns its answer."""

    count: int
    matrix: list[list[int]]
    cell: LiveErrorCell | None


class DatasetPage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[Dataset]


class RunPage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[Run]


class ModelVersionPage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[ModelVersion]


class AliasChangePage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[AliasChange]


class PredictionPage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[Prediction]


class SamplePage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[Sample]


class BlobDeleted(TypedDict):
    deleted: bool


EventType = Literal["run.finished", "version.registered", "alias.moved", "gate.refused", "rollback.auto", "drift.alert"]


class InputDrift(TypedDict):
    mean: float
    reference_mean: float | None
    psi: float | None


class OutputDrift(TypedDict):
    mean_confidence: float
    low_confidence_share: float
    confidence_psi: float | None  # None until the version's first day had 200 predictions
    class_mix: list[float]
    class_mix_psi: float


class DriftDay(TypedDict):
    """One day of a version's traffic against its training data (inputs, class mix) and its first day (confidence):
    each measure's population stability index, the largest (`drift`), which one (`worst`) and its level."""

    day: str
    predictions: int
    inputs: dict[str, InputDrift]  # ink_fraction, bbox_size, centre_offset, stroke_width
    outputs: OutputDrift
    drift: float
    worst: str
    level: Literal["insufficient", "none", "moderate", "significant"]  # insufficient: fewer than 200 predictions


class DriftReference(TypedDict):
    dataset_id: int | None
    first_day: str | None


class DriftThresholds(TypedDict):
    moderate: float
    significant: float
    low_confidence: float


class Drift(TypedDict):
    model_version: int
    reference: DriftReference
    thresholds: DriftThresholds
    days: list[DriftDay]


class ProductionDay(DriftDay):
    model_version: int


class ProductionDrift(TypedDict):
    drift: ProductionDay | None


class EventRecorded(TypedDict):
    id: int | None  # None: no webhook listens to this type


class Webhook(TypedDict):
    id: int
    url: str
    events: list[EventType]
    active: bool
    created_by: str
    created_at: Timestamp


class NewWebhook(Webhook):
    secret: str  # shown once, at registration: it signs every delivery (HMAC-SHA256)


class WebhookPage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[Webhook]


class DeliveredEvent(TypedDict):
    id: int
    type: EventType


class Delivery(TypedDict):
    """One event to one webhook and how its attempts went."""

    id: int
    webhook: int
    url: str
    event: DeliveredEvent
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: Timestamp
    delivered_at: Timestamp | None
    created_at: Timestamp


class DeliveryPage(TypedDict):
    count: int
    next: str | None
    previous: str | None
    results: list[Delivery]


class ClaimedEvent(TypedDict):
    id: int
    type: EventType
    data: dict[str, Any]
    created_at: Timestamp


class ClaimedDelivery(TypedDict):
    """A due delivery leased to a webhooks worker: where to send it and the secret to sign it with."""

    id: int
    attempt: int
    url: str
    secret: str
    allow_private: bool
    event: ClaimedEvent
