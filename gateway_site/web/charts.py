"""Chart specifications (plotly traces and layout) for pages; rendered by static/web/charts.js."""

from __future__ import annotations

COLOURS = ["#3559e0", "#067647", "#b42318", "#b54708", "#6941c6", "#0e9384", "#c11574", "#475467", "#1570ef", "#4e5ba6"]


def class_counts(counts: dict) -> dict:
    return {"traces": [{"type": "bar", "x": [str(d) for d in range(10)], "y": [counts[str(d)] for d in range(10)],
                        "marker": {"color": COLOURS[0]}, "hovertemplate": "class %{x}: %{y}<extra></extra>"}],
            "layout": {"height": 180, "xaxis": {"type": "category"}}}


def training_curves(epochs: list[dict]) -> dict:
    x = [e["epoch"] for e in epochs]
    traces = [
        {"type": "scatter", "mode": "lines+markers", "name": "loss", "x": x, "y": [e["loss"] for e in epochs],
         "line": {"color": COLOURS[2]}, "yaxis": "y2"},
        {"type": "scatter", "mode": "lines+markers", "name": "train accuracy", "x": x,
         "y": [e["train_accuracy"] for e in epochs], "line": {"color": COLOURS[0]}},
    ]
    if epochs and all("val_accuracy" in e for e in epochs):
        traces.append({"type": "scatter", "mode": "lines+markers", "name": "held-out accuracy", "x": x,
                       "y": [e["val_accuracy"] for e in epochs], "line": {"color": COLOURS[1]}})
    return {"traces": traces, "layout": {"height": 240, "xaxis": {"title": {"text": "epoch"}, "dtick": 1},
                                          "yaxis": {"title": {"text": "accuracy"}},
                                          "yaxis2": {"title": {"text": "loss"}, "overlaying": "y", "side": "right"}}}


def monitoring(series: list[dict]) -> dict:
    """Three charts over days, one line per model version: predictions, mean confidence, correction rate."""
    versions = sorted({row["model_version_id"] for row in series})

    def lines(metric: str) -> list[dict]:
        return [{"type": "scatter", "mode": "lines+markers", "name": f"v{v}",
                 "x": [r["day"] for r in series if r["model_version_id"] == v],
                 "y": [r[metric] for r in series if r["model_version_id"] == v],
                 "line": {"color": COLOURS[i % len(COLOURS)]}} for i, v in enumerate(versions)]

    totals = [0] * 10
    for row in series:
        totals = [a + b for a, b in zip(totals, row["digits"], strict=True)]
    mix = [{"type": "bar", "name": f"v{v}", "x": [str(d) for d in range(10)],
            "y": [sum(r["digits"][d] for r in series if r["model_version_id"] == v) for d in range(10)],
            "marker": {"color": COLOURS[i % len(COLOURS)]}} for i, v in enumerate(versions)]
    return {
        "count": {"traces": lines("count"), "layout": {"yaxis": {"rangemode": "tozero"}}},
        "confidence": {"traces": lines("mean_confidence"), "layout": {"yaxis": {"range": [0, 1]}}},
        "corrections": {"traces": lines("correction_rate"), "layout": {"yaxis": {"rangemode": "tozero", "tickformat": ".0%"}}},
        "mix": {"traces": mix, "layout": {"barmode": "stack", "xaxis": {"type": "category"}}},
    }
