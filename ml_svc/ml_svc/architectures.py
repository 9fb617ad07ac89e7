"""Model architectures, one class each, with their declared hyperparameters.

Adding an architecture = one class here decorated with `@register`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from kit.errors import AppError


@dataclass(frozen=True)
class HyperParameter:
    """A declared hyperparameter: type, default and inclusive bounds."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    def validate(self, value: Any) -> Any:
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a{'n integer' if self.kind is int else ' number'}")
        if self.kind is int and float(value) != int(value):
            raise ValueError("must be an integer")
        value = self.kind(value)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}")
        return value

    def describe(self) -> dict:
        return {
            "name": self.name,
            "type": self.kind.__name__,
            "default": self.default,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "help": self.help,
        }


AUGMENT_HELP = ("random small rotations, shifts and scalings; handwriting also traced again with a round canvas pen "
                "of random width (half of each batch; a set over 10,000 digits: less)")

# Every architecture trains with these; each may add its own.
TRAINING_HYPERPARAMETERS = (
    HyperParameter("epochs", int, 25, 1, 200, "passes over the training data"),
    HyperParameter("batch_size", int, 128, 8, 1024, "images per optimiser step"),
    HyperParameter("learning_rate", float, 0.006, 1e-5, 1.0, "peak learning rate (one-cycle schedule)"),
    HyperParameter("weight_decay", float, 0.0005, 0.0, 0.1, "AdamW weight decay"),
    HyperParameter("augment", bool, True, help=AUGMENT_HELP),
    HyperParameter("mixed_precision", bool, True,
                   help="bfloat16 arithmetic where the CPU has it natively (AVX512-BF16 or AMX): ~1.8x faster"),
    HyperParameter("seed", int, 0, 0, 2**31 - 1, "random seed"),
    HyperParameter("time_budget_s", int, 0, 0, 86400,
                   "if not 0: train for about this many seconds on this CPU instead of a number of epochs "
                   "(the schedule is sized from the pace of the first steps); an unset width is chosen to fit"),
)

# Fine-tuning continues from a version's weights with these (its architecture's own stay as they were).
FINE_TUNE_HYPERPARAMETERS = (
    HyperParameter("epochs", int, 4, 1, 50, "passes over user samples plus replay"),
    HyperParameter("batch_size", int, 64, 8, 1024, "images per optimiser step"),
    HyperParameter("learning_rate", float, 0.0005, 1e-6, 0.1, "peak learning rate, lower than for training"),
    HyperParameter("weight_decay", float, 0.0005, 0.0, 0.1, "AdamW weight decay"),
    HyperParameter("augment", bool, True, help=AUGMENT_HELP),
    HyperParameter("replay_size", int, 2000, 0, 100000, "base training images replayed so old skills stay"),
    HyperParameter("user_repeats", int, 5, 1, 100, "how often each user sample appears per epoch"),
    HyperParameter("seed", int, 0, 0, 2**31 - 1, "random seed"),
)

ARCHITECTURES: dict[str, type[Architecture]] = {}


def register(cls: type[Architecture]) -> type[Architecture]:
    ARCHITECTURES[cls.name] = cls
    return cls


class Architecture:
    """An architecture: a name, declared hyperparameters, and how to build the module."""

    name = ""
    title = ""
    hyperparameters: tuple[HyperParameter, ...] = ()

    @classmethod
    def all_hyperparameters(cls) -> tuple[HyperParameter, ...]:
        """The training hyperparameters, then the architecture's own; an own one with a training one's name
        replaces it (its default, say, suits this architecture better)."""
        own = {h.name for h in cls.hyperparameters}
        return tuple(h for h in TRAINING_HYPERPARAMETERS if h.name not in own) + cls.hyperparameters

    @classmethod
    def build(cls, hp: dict) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict:
        return {
            "name": cls.name,
            "title": cls.title,
            "hyperparameters": [h.describe() for h in cls.all_hyperparameters()],
        }


def get_architecture(name: str) -> type[Architecture]:
    if name not in ARCHITECTURES:
        raise AppError(
            "unknown_architecture",
            f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}",
            details={"architecture": name},
        )
    return ARCHITECTURES[name]


def validate_hyperparameters(architecture: type[Architecture], given: dict | None) -> dict:
    """An architecture's hyperparameters with defaults filled in; bad ones are a 400 naming the field."""
    return validate_values(architecture.all_hyperparameters(), given)


def validate_values(specs: tuple[HyperParameter, ...], given: dict | None) -> dict:
    """Defaults filled in; unknown or out-of-bounds values are a 400 naming the field."""
    given = given or {}
    if not isinstance(given, dict):
        raise AppError("invalid_hyperparameters", "hyperparameters must be an object")
    declared = {h.name: h for h in specs}
    errors = {name: "unknown hyperparameter" for name in given if name not in declared}
    values = {}
    for name, spec in declared.items():
        try:
            values[name] = spec.validate(given[name]) if name in given else spec.default
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        fields = ", ".join(sorted(errors))
        raise AppError("invalid_hyperparameters", f"invalid hyperparameters: {fields}", details=errors)
    return values


@register
class LinearBaseline(Architecture):
    """Multinomial logistic regression on the 784 pixels: the floor every model must beat."""

    name = "linear"
    title = "Linear baseline (logistic regression)"

    @classmethod
    def build(cls, hp: dict) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))


@register
class MLP(Architecture):
    """Two hidden fully-connected layers with ReLU and dropout."""

    name = "mlp"
    title = "Multi-layer perceptron"
    hyperparameters = (
        HyperParameter("hidden", int, 256, 16, 2048, "units in each hidden layer"),
        HyperParameter("dropout", float, 0.2, 0.0, 0.8, "dropout after each hidden layer"),
    )

    @classmethod
    def build(cls, hp: dict) -> nn.Module:
        hidden, dropout = int(hp["hidden"]), float(hp["dropout"])
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )


@register
class LeNet5(Architecture):
    """LeCun et al. (1998): two convolution/pooling stages and three dense layers."""

    name = "lenet5"
    title = "LeNet-5"

    @classmethod
    def build(cls, hp: dict) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(inplace=True), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, 10),
        )


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _trunk(w: int) -> list[nn.Module]:
    """Five conv-BN-ReLU blocks with two poolings: 28x28x1 -> 7x7x(4w). Shared by `cnn` and `cnn-dense`
    (module order is part of the stored weights' names: keep it)."""
    return [*_conv_block(1, w), *_conv_block(w, w), nn.MaxPool2d(2),
            *_conv_block(w, 2 * w), *_conv_block(2 * w, 2 * w), nn.MaxPool2d(2),
            *_conv_block(2 * w, 4 * w)]


@register
class CompactCNN(Architecture):
    """A small modern CNN: conv-BN-ReLU blocks, two poolings, global average pooling."""

    name = "cnn"
    title = "Compact CNN with batch-norm"
    hyperparameters = (
        HyperParameter("width", int, 16, 8, 128, "channels of the first block (doubles twice)"),
        HyperParameter("dropout", float, 0.1, 0.0, 0.8, "dropout before the classifier"),
    )

    @classmethod
    def build(cls, hp: dict) -> nn.Module:
        w = int(hp["width"])
        return nn.Sequential(
            *_trunk(w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(float(hp["dropout"])),
            nn.Linear(4 * w, 10),
        )


@register
class DenseHeadCNN(Architecture):
    """The compact CNN with a third pooling and a dense classifier over the 3x3 map instead of global
    average pooling: it keeps where in the digit each feature was (bench/README.md: 99.43 % mean of 3 seeds vs
    99.03 % for `cnn`'s defaults, trained on 5,000 MNIST digits)."""

    name = "cnn-dense"
    title = "CNN with batch-norm and a dense head"
    hyperparameters = (
        HyperParameter("epochs", int, 30, 1, 200, "passes over the training data"),
        HyperParameter("width", int, 32, 8, 128, "channels of the first block (doubles twice)"),
        HyperParameter("dropout", float, 0.1, 0.0, 0.8, "dropout before the classifier"),
    )

    @classmethod
    def build(cls, hp: dict) -> nn.Module:
        w = int(hp["width"])
        return nn.Sequential(
            *_trunk(w),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(float(hp["dropout"])),
            nn.Linear(4 * w * 3 * 3, 10),
        )


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
