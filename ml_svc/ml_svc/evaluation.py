"""The held-out data every version of a dataset is judged on, and the comparison of two versions."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
from torch import nn

from kit.errors import AppError
from ml_svc.training import evaluate, metrics_of, stratified_split

SHOWN_SAMPLES = 24


@dataclass(frozen=True)
class SplitData:
    dataset_id: int
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    fraction: float
    seed: int

    @property
    def info(self) -> dict:
        return {"dataset_id": self.dataset_id, "train": int(len(self.train_labels)),
                "validation": int(len(self.val_labels)), "fraction": self.fraction, "seed": self.seed}


def dataset_split(storage, dataset_id: int) -> SplitData:
    """A dataset's pixels cut by the train/validation split recorded with it at collection."""
    dataset = storage.get_dataset(dataset_id)
    images, labels = storage.dataset_arrays(dataset_id)
    recorded = dataset.get("meta", {}).get("validation", {})
    fraction, seed = recorded.get("fraction", 0.1), recorded.get("seed", 0)
    train_idx, val_idx = stratified_split(labels, fraction, seed)
    return SplitData(dataset_id, images[train_idx], labels[train_idx], images[val_idx], labels[val_idx], fraction, seed)


def held_out_dataset_id(version: dict) -> int:
    """The dataset whose recorded validation split judges this version (and its fine-tunes)."""
    recorded = version.get("metrics", {}).get("split", {}).get("dataset_id")
    if recorded is not None:
        return int(recorded)
    if not version.get("datasets"):
        raise AppError("no_held_out_data", f"v{version['id']} records no dataset to evaluate on")
    return int(min(version["datasets"]))


def image_b64(image: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).decode()


def evaluate_with_images(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> dict:
    """`evaluate`, with the images of the most confident mistakes attached."""
    metrics = evaluate(model, images, labels, mistakes=12)
    for mistake in metrics["confident_mistakes"]:
        mistake["image"] = image_b64(images[mistake["index"]])
    return metrics


def compare(before: np.ndarray, after: np.ndarray, images: np.ndarray, labels: np.ndarray) -> dict:
    """Candidate vs baseline on the same digits, from each one's class probabilities (N, 10) on `images`:
    accuracy and per-class deltas, samples fixed and broken."""
    labels = np.asarray(labels, dtype=np.int64)
    old, new = before.argmax(1), after.argmax(1)
    base_metrics = metrics_of(before, labels)
    cand_metrics = metrics_of(after, labels)

    def shown(indices: np.ndarray) -> list[dict]:
        return [{"index": int(i), "label": int(labels[i]), "before": int(old[i]), "after": int(new[i]),
                 "image": image_b64(images[i])} for i in indices[:SHOWN_SAMPLES]]

    fixed = np.flatnonzero((old != labels) & (new == labels))
    broken = np.flatnonzero((old == labels) & (new != labels))
    confusion_delta = (np.array(cand_metrics["confusion_matrix"]) - np.array(base_metrics["confusion_matrix"])).tolist()
    return {
        "evaluated_on": int(len(labels)),
        "accuracy": {"baseline": base_metrics["accuracy"], "candidate": cand_metrics["accuracy"],
                     "delta": round(cand_metrics["accuracy"] - base_metrics["accuracy"], 5)},
        "per_class": {
            digit: {
                metric: round(cand_metrics["per_class"][digit][metric] - base_metrics["per_class"][digit][metric], 5)
                for metric in ("precision", "recall", "f1")
            }
            for digit in cand_metrics["per_class"]
        },
        "confusion_matrix_delta": confusion_delta,
        "fixed_count": int(len(fixed)),
        "broken_count": int(len(broken)),
        "fixed": shown(fixed),
        "broken": shown(broken),
    }
