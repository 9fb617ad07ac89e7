"""Drift: is live traffic still like what a version learnt from?

Per version and day, from up to `DAY_SAMPLE` of that day's predictions (the 28x28 inputs the model saw):
- inputs: ink fraction, bounding-box size, centre offset (of the ink's centre of mass from the image's centre) and
  stroke width (2 x ink area / boundary pixels), each compared with the same statistic on up to `REFERENCE_SAMPLE`
  images of the version's training dataset;
- outputs: mean confidence and the share below `LOW_CONFIDENCE`, compared with the version's first day of traffic
  (a training set has no answers to compare with), and the predicted-class mix, compared with the training labels.
Each comparison is a population stability index (PSI) over ten bins cut at the reference's deciles. The drift of a
day is its largest PSI; under 0.1 is none, up to 0.25 moderate, above it significant: a `drift.alert` event, once per
version and day. A day with fewer than MIN_SAMPLE predictions is `insufficient` (a PSI over a few dozen values is
large by chance alone), and confidence is compared only once the first day had MIN_SAMPLE.
"""

from __future__ import annotations

import functools
import time as clock
from datetime import date, datetime, time, timedelta

import numpy as np
from django.utils import timezone

from kit import imagepack
from kit.errors import AppError
from storage_svc.registry import events
from storage_svc.registry.blobs import read_blob_file
from storage_svc.registry.models import Dataset, ModelVersion, Prediction

INPUTS = ("ink_fraction", "bbox_size", "centre_offset", "stroke_width")
DAY_SAMPLE, REFERENCE_SAMPLE, MIN_SAMPLE = 2000, 5000, 200
LOW_CONFIDENCE = 0.8
MODERATE, SIGNIFICANT = 0.1, 0.25
EPSILON = 1e-4
INK = 128


def input_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """The four input statistics of each image of (N, 28, 28) uint8."""
    ink = images >= INK
    area = ink.sum(axis=(1, 2)).astype(np.float64)
    rows, cols = ink.any(axis=2), ink.any(axis=1)
    height = np.where(rows.any(1), 28 - rows[:, ::-1].argmax(1) - rows.argmax(1), 0)
    width = np.where(cols.any(1), 28 - cols[:, ::-1].argmax(1) - cols.argmax(1), 0)
    weights = images.astype(np.float64)
    total = weights.sum(axis=(1, 2))
    grid = np.arange(28, dtype=np.float64)
    safe = np.where(total > 0, total, 1.0)
    centre_y = (weights.sum(axis=2) * grid).sum(1) / safe
    centre_x = (weights.sum(axis=1) * grid).sum(1) / safe
    offset = np.where(total > 0, np.hypot(centre_y - 13.5, centre_x - 13.5), 0.0)
    padded = np.pad(ink, ((0, 0), (1, 1), (1, 1)))
    interior = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    boundary = (ink & ~interior).sum(axis=(1, 2)).astype(np.float64)
    stroke = np.where(boundary > 0, 2 * area / np.maximum(boundary, 1), 0.0)
    return {"ink_fraction": area / 784, "bbox_size": np.maximum(height, width).astype(np.float64),
            "centre_offset": offset, "stroke_width": stroke}


def psi(reference: np.ndarray, live: np.ndarray) -> float:
    """Population stability index of `live` against `reference`, over ten bins cut at the reference's deciles."""
    if not len(reference) or not len(live):
        return 0.0
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, 11)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
    actual = np.bincount(np.searchsorted(edges, live, side="right"), minlength=len(edges) + 1) / len(live)
    expected, actual = np.maximum(expected, EPSILON), np.maximum(actual, EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def mix_psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI between two class distributions (counts or shares of the ten digits)."""
    if expected.sum() == 0 or actual.sum() == 0:
        return 0.0
    expected = np.maximum(expected / expected.sum(), EPSILON)
    actual = np.maximum(actual / actual.sum(), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def level(value: float, count: int) -> str:
    if count < MIN_SAMPLE:
        return "insufficient"
    return "significant" if value > SIGNIFICANT else "moderate" if value >= MODERATE else "none"


@functools.lru_cache(maxsize=8)
def _reference(dataset_id: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(input statistics of up to REFERENCE_SAMPLE of the dataset's images, its class counts): datasets never
    change, so this is computed once per process."""
    dataset = Dataset.objects.get(pk=dataset_id)
    images, labels = imagepack.unpack(read_blob_file(dataset.blob_id))
    if len(images) > REFERENCE_SAMPLE:
        chosen = np.random.default_rng(0).choice(len(images), REFERENCE_SAMPLE, replace=False)
        images = images[np.sort(chosen)]
    return input_statistics(images), np.bincount(labels, minlength=10).astype(np.float64)


def training_dataset(version: ModelVersion) -> int | None:
    recorded = (version.metrics or {}).get("split", {}).get("dataset_id")
    if recorded is not None:
        return int(recorded)
    first = version.datasets.order_by("id").values_list("id", flat=True).first()
    return int(first) if first is not None else None


def _day_rows(version_id: int, day: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images, digits, confidences) of up to DAY_SAMPLE of the version's newest predictions that day."""
    start = timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())
    rows = list(Prediction.objects.filter(model_version_id=version_id, created_at__gte=start,
                                          created_at__lt=start + timedelta(days=1))
                .order_by("-id").values_list("image", "digit", "confidence")[:DAY_SAMPLE])
    if not rows:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), np.zeros(0)
    images = np.frombuffer(b"".join(bytes(image) for image, _, _ in rows), np.uint8).reshape(-1, 28, 28)
    return images, np.array([d for _, d, _ in rows]), np.array([c for _, _, c in rows], dtype=np.float64)


def version_drift(*, version_id: int, days: int = 7, today: date | None = None) -> dict:
    """The version's drift for each of its last `days` days with predictions, newest first."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise AppError("not_found", f"model version {version_id} does not exist", status=404)
    today = today or timezone.localdate()
    dataset_id = training_dataset(version)
    reference, class_counts = _reference(dataset_id) if dataset_id is not None else ({}, np.zeros(10))
    first = Prediction.objects.filter(model_version_id=version_id).order_by("id").values_list("created_at", flat=True)[:1]
    first_day = timezone.localdate(first[0]) if first else None
    baseline = _day_rows(version_id, first_day)[2] if first_day else np.zeros(0)
    found = []
    for back in range(days):
        day = today - timedelta(days=back)
        rows = _day_rows(version_id, day) if first_day and day >= first_day else None
        if rows is not None and len(rows[1]):
            found.append(_one_day(day, rows, reference, class_counts, baseline))
    return {"model_version": version_id,
            "reference": {"dataset_id": dataset_id, "first_day": first_day.isoformat() if first_day else None},
            "thresholds": {"moderate": MODERATE, "significant": SIGNIFICANT, "low_confidence": LOW_CONFIDENCE},
            "days": found}


def _one_day(day: date, rows: tuple, reference: dict, class_counts: np.ndarray, baseline: np.ndarray) -> dict:
    images, digits, confidence = rows
    live = input_statistics(images)
    inputs = {name: {"mean": round(float(live[name].mean()), 4),
                     "reference_mean": round(float(reference[name].mean()), 4) if name in reference else None,
                     "psi": round(psi(reference[name], live[name]), 4) if name in reference else None}
              for name in INPUTS}
    mix = np.bincount(digits, minlength=10).astype(np.float64)
    outputs = {
        "mean_confidence": round(float(confidence.mean()), 4),
        "low_confidence_share": round(float((confidence < LOW_CONFIDENCE).mean()), 4),
        "confidence_psi": round(psi(baseline, confidence), 4) if len(baseline) >= MIN_SAMPLE else None,
        "class_mix": [round(float(share), 4) for share in mix / mix.sum()],
        "class_mix_psi": round(mix_psi(class_counts, mix), 4),
    }
    scores = {f"input.{name}": value["psi"] for name, value in inputs.items() if value["psi"] is not None}
    scores["output.class_mix"] = outputs["class_mix_psi"]
    if outputs["confidence_psi"] is not None:
        scores["output.confidence"] = outputs["confidence_psi"]
    worst = max(scores, key=scores.get)
    return {"day": day.isoformat(), "predictions": int(len(digits)), "inputs": inputs, "outputs": outputs,
            "drift": scores[worst], "worst": worst, "level": level(scores[worst], len(digits))}


TODAY_EVERY_S = 60.0  # the dashboard, the gauges and the webhooks' tick share one computation a minute per process
_today: list = [float("-inf"), None]  # (when, what)


def production_today() -> dict | None:
    """Today's drift of the production version (None while nothing serves or nothing was asked today), computed
    at most once a minute per process; a significant one is a `drift.alert` event, once per version and day."""
    if clock.monotonic() - _today[0] >= TODAY_EVERY_S:
        _today[:] = [clock.monotonic(), _production_today()]
    return _today[1]


def _production_today() -> dict | None:
    from storage_svc.registry.models import Alias

    production = Alias.objects.filter(name=Alias.Name.PRODUCTION).values_list("model_version_id", flat=True).first()
    if production is None:
        return None
    found = version_drift(version_id=production, days=1)["days"]
    if not found:
        return None
    today = {"model_version": production, **found[0]}
    if today["level"] == "significant":
        events.emit("drift.alert", {"drift": today}, key=f"drift:v{production}:{today['day']}")
    return today
