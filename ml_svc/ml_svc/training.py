"""Training and evaluation as plain functions over a model and in-memory tensors."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml_svc.preprocessing import to_model_input

ProgressCallback = Callable[[float, dict | None], None]


class TrainingCancelled(Exception):
    """Raised from a progress callback to stop training between batches."""


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


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random rotation (±12°), scale (0.9-1.1) and shift (±2 px) of a (N,1,28,28) batch."""
    n = batch.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(12)
    scale = 1 + (torch.rand(n, generator=generator) * 2 - 1) * 0.1
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 / 14)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    background = -0.1307 / 0.3081
    return F.grid_sample(batch - background, grid, align_corners=False, padding_mode="zeros") + background


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively; elsewhere torch would emulate it, slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return torch.backends.mkldnn.is_available() and any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def train(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    hp: dict,
    *,
    on_progress: ProgressCallback,
    progress_every_s: float = 2.0,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
) -> list[dict]:
    """Train in place with AdamW and a one-cycle schedule; returns one report per epoch."""
    torch.manual_seed(hp["seed"])
    generator = torch.Generator().manual_seed(hp["seed"])
    x = to_model_input(images)
    y = torch.tensor(np.asarray(labels), dtype=torch.long)
    epochs, batch_size = int(hp["epochs"]), int(hp["batch_size"])
    steps_per_epoch = math.ceil(len(y) / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
    total_steps = epochs * steps_per_epoch
    # OneCycleLR divides by zero when its warm-up would end exactly on the first step (0.25 x 4 steps - 1 = 0).
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=hp["learning_rate"], total_steps=total_steps, pct_start=0.3 if total_steps == 4 else 0.25
    )
    # bfloat16 matmuls and convolutions (weights and optimiser stay float32) in channels-last layout, oneDNN's
    # fast path; serving and evaluation run the same weights in float32.
    bfloat16 = bool(hp.get("mixed_precision")) and native_bfloat16()
    memory_format = torch.channels_last if bfloat16 else torch.contiguous_format
    model.to(memory_format=memory_format)
    reports: list[dict] = []
    started = time.perf_counter()
    last_report = started
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        loss_sum, correct = 0.0, 0
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            batch_x, batch_y = x[index], y[index]
            if hp["augment"]:
                batch_x = augment(batch_x, generator)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
                logits = model(batch_x.contiguous(memory_format=memory_format)).float()
            loss = F.cross_entropy(logits, batch_y, label_smoothing=0.05)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(index)
            correct += int((logits.argmax(1) == batch_y).sum())
            now = time.perf_counter()
            if now - last_report >= progress_every_s:
                last_report = now
                on_progress((epoch + (step + 1) / steps_per_epoch) / epochs, None)
        elapsed = time.perf_counter() - started
        report = {
            "epoch": epoch + 1,
            "loss": round(loss_sum / len(y), 5),
            "train_accuracy": round(correct / len(y), 5),
            "seconds": round(elapsed, 2),
            "eta_s": round(elapsed / (epoch + 1) * (epochs - epoch - 1), 1),
        }
        if val_images is not None and len(val_images):
            report["val_accuracy"] = round(evaluate(model, val_images, val_labels)["accuracy"], 5)
        reports.append(report)
        last_report = time.perf_counter()
        on_progress((epoch + 1) / epochs, report)
    model.to(memory_format=torch.contiguous_format)  # plain tensors again for safetensors and ONNX export
    return reports


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
