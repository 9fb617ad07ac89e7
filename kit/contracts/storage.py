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
    reviewed_by: str
    reviewed_at: Timestamp | None
    created_at: Timestamp
    image: str


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
