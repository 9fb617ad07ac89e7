"""Every measure of a model: its metrics on labelled digits, the held-out split every version of a dataset is
judged on, and the comparison of two versions (remembered per pair: versions and data never change)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kit.errors import AppError
from ml_svc import peers
from ml_svc.preprocessing import to_model_input
from ml_svc.serving import COMPARISONS_KEPT, LoadedModel, model_cache, version_info

SHOWN_SAMPLES = 24


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a class-stratified train/validation split, fixed by `seed`."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        rng.shuffle(members)
        n_val = int(round(len(members) * fraction))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


@torch.inference_mode()
def predict_proba(model: nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, 10) for canonical uint8 images."""
    model.eval()
    chunks = [
        F.softmax(model(to_model_input(images[i : i + batch_size])), dim=1)
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, 10), dtype=np.float32)


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, mistakes: int = 0) -> dict:
    """Accuracy, per-class precision/recall/F1, confusion matrix, most confident mistakes."""
    return metrics_of(predict_proba(model, images), labels, mistakes=mistakes)


def metrics_of(probabilities: np.ndarray, labels: np.ndarray, *, mistakes: int = 0) -> dict:
    """`evaluate`'s metrics from class probabilities (N, 10) already computed."""
    predicted = probabilities.argmax(1)
    labels = np.asarray(labels, dtype=np.int64)
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {}
    for digit in range(10):
        tp = confusion[digit, digit]
        precision = tp / max(confusion[:, digit].sum(), 1)
        recall = tp / max(confusion[digit].sum(), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        per_class[str(digit)] = {
            "precision": round(float(precision), 5),
            "recall": round(float(recall), 5),
            "f1": round(float(f1), 5),
            "support": int(confusion[digit].sum()),
        }
    metrics = {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "evaluated_on": int(len(labels)),
        "per_class": per_class,
        "macro_f1": round(float(np.mean([c["f1"] for c in per_class.values()])), 5),
        "confusion_matrix": confusion.tolist(),
    }
    if mistakes:
        wrong = np.flatnonzero(predicted != labels)
        confidence = probabilities[wrong, predicted[wrong]]
        worst = wrong[np.argsort(-confidence)[:mistakes]]
        metrics["confident_mistakes"] = [
            {"index": int(i), "label": int(labels[i]), "predicted": int(predicted[i]),
             "confidence": round(float(probabilities[i, predicted[i]]), 4)}
            for i in worst
        ]
    return metrics


@dataclass(frozen=True)
class SplitData:
    dataset_id: int
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    fraction: float
    seed: int
    source: str = ""  # where the dataset came from (its collector source, `upload` or `user`)

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
    return SplitData(dataset_id, images[train_idx], labels[train_idx], images[val_idx], labels[val_idx], fraction, seed,
                     dataset.get("source", ""))


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
    return metrics_with_images(predict_proba(model, images), images, labels)


def metrics_with_images(probabilities: np.ndarray, images: np.ndarray, labels: np.ndarray) -> dict:
    """`metrics_of` with the 12 most confident mistakes and their images."""
    metrics = metrics_of(probabilities, labels, mistakes=12)
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


def compare_versions(baseline_id: int, candidate_id: int) -> dict:
    """Both versions on the held-out digits of the baseline's first dataset. Versions, weights and
    datasets never change, so neither does a pair's comparison: computed once, then remembered."""
    cache = model_cache()
    key = (baseline_id, candidate_id)
    result = cache.comparisons.get(key)
    if result is None:
        result = _comparison(cache.version(baseline_id), cache.version(candidate_id))
        cache.comparisons[key] = result
        while len(cache.comparisons) > COMPARISONS_KEPT:
            cache.comparisons.pop(next(iter(cache.comparisons)), None)
    return {"baseline": version_info(baseline_id), "candidate": version_info(candidate_id), **result}


def _comparison(baseline: LoadedModel, candidate: LoadedModel) -> dict:
    storage = peers.storage()
    data = dataset_split(storage, held_out_dataset_id(storage.get_model_version(baseline.version_id)))
    # Judged in float32, as training judged them (a version may serve in int8: serving.py).
    before, after = baseline.float32.probabilities(data.val_images), candidate.float32.probabilities(data.val_images)
    return {"dataset_id": data.dataset_id, **compare(before, after, data.val_images, data.val_labels)}
