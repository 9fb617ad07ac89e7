"""What ml_svc answers (kit.clients.MLClient's return types; ml_svc/ml_svc/views.py and inference.py)."""

# No `from __future__ import annotations` here: Python 3.11's TypedDict cannot see NotRequired in a string.

from typing import Any, Literal, NotRequired, TypedDict

from kit.contracts.storage import VersionRef


class Hyperparameter(TypedDict):
    name: str
    type: Literal["int", "float", "bool"]
    default: Any
    minimum: float | None
    maximum: float | None
    help: str


class Architecture(TypedDict):
    name: str
    title: str
    hyperparameters: list[Hyperparameter]


class Architectures(TypedDict):
    architectures: list[Architecture]
    default: str
    fine_tune: list[Hyperparameter]


class ImageError(TypedDict):
    code: str
    message: str
    status: int


class RefusedImage(TypedDict):
    error: ImageError


class ShadowAnswer(TypedDict):
    """The candidate's answer to an image production answered (shadow scoring): for the history, never the user."""

    model_version_id: int
    digit: int
    confidence: float


class Classified(TypedDict):
    """One image's answer; `image` is the base64 of the 28x28 uint8 input the model saw. `model`: the version that
    answered when it is not the batch's (the candidate, for a user in its canary); `shadow`: the candidate's answer
    beside production's."""

    digit: int
    probabilities: list[float]
    image: str
    model: NotRequired[VersionRef]
    shadow: NotRequired[ShadowAnswer]


class BatchAnswer(TypedDict):
    """`results` in the order of the images: an answer, or the reason that image was refused."""

    model: VersionRef
    results: list[Classified | RefusedImage]
    latency_ms: float


class AccuracyChange(TypedDict):
    baseline: float
    candidate: float
    delta: float


class ChangedDigit(TypedDict):
    index: int
    label: int
    before: int
    after: int
    image: str


class Comparison(TypedDict):
    """A candidate against a baseline on the held-out digits of the baseline's first dataset."""

    baseline: VersionRef
    candidate: VersionRef
    dataset_id: int
    evaluated_on: int
    accuracy: AccuracyChange
    per_class: dict[str, dict[str, float]]
    confusion_matrix_delta: list[list[int]]
    fixed_count: int
    broken_count: int
    fixed: list[ChangedDigit]
    broken: list[ChangedDigit]


class CellItem(TypedDict):
    index: int  # its place in the dataset's part
    image: str  # base64 of its 784 bytes
    confidence: float  # the version's probability of the cell's predicted digit


class Cell(TypedDict):
    true: int
    predicted: int
    count: int
    items: list[CellItem]  # at most 48, the most confident first


class ConfusionCell(TypedDict):
    """A version's confusion matrix on a dataset's held-out part or all of it (rows: true, columns: its answer),
    and one cell's digits if one was asked for."""

    model: VersionRef
    dataset_id: int
    part: Literal["held-out", "all"]
    count: int
    matrix: list[list[int]]
    cell: Cell | None


class Overlay(TypedDict):
    digit: int  # the version's answer
    target: int  # the class explained
    overlay_png: str


class Overlays(TypedDict):
    overlays: list[Overlay]  # in the order of the images asked about


class CanonicalImage(TypedDict):
    """The base64 of the 28x28 uint8 image ml_svc would classify."""

    image: str


class SweepTrial(TypedDict):
    number: int
    run: int | None
    state: Literal["running", "complete", "pruned", "fail", "waiting"]
    params: dict[str, Any]
    value: float | None
    epochs: int
    intermediate: list[float]
    duration_s: float | None


class SweepCharts(TypedDict):
    """plotly figures ({"data", "layout"}) of the search; None until there is something to draw."""

    history: dict[str, Any] | None
    parallel: dict[str, Any] | None
    importances: dict[str, Any] | None


class Sweep(TypedDict):
    sweep: int
    study: str
    trials: list[SweepTrial]
    charts: SweepCharts


class Completeness(TypedDict):
    """Integrated gradients' axiom: the attributions add up (`sum`) to what they explain, the target's probability
    on the input minus on a blank canvas (`explained`)."""

    sum: float
    explained: float


class NearestExample(TypedDict):
    """A training digit of the version, near the input in its penultimate layer."""

    label: int
    similarity: float  # cosine, 1 = the same point
    image: str  # base64 of its 784 bytes, like a prediction's `image`


class Explanation(TypedDict):
    """Why `model` answers `digit` for an image: the attribution of class `target` per pixel (28 rows of 28; positive
    pushed towards it), the input with the attribution over it as a PNG (base64), and the version's 5 training digits
    nearest to it (None: the version has no index (registered before them, trained on users' drawings, or one that
    could not be built), or its index could not be read just then)."""

    model: VersionRef
    target: int
    digit: int
    probability: float
    method: Literal["integrated_gradients"]
    steps: int
    attribution: list[list[float]]
    completeness: Completeness
    overlay_png: str
    nearest: list[NearestExample] | None
