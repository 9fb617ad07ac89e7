"""Chart specifications (plotly traces and layout) for pages; rendered by static/web/charts.js."""

from __future__ import annotations

from datetime import date, timedelta

DAY_MS = 86_400_000

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
    # The loss axis sits on the right: leave room for its numbers and title; the legend goes above the plot.
    return {"traces": traces, "layout": {"height": 260, "margin": {"l": 56, "r": 60, "t": 36, "b": 44},
                                          "showlegend": True, "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
                                          "xaxis": {"title": {"text": "epoch"}, "tick0": 1, "dtick": max(1, len(x) // 12),
                                                    "range": [0.5, max(x, default=1) + 0.5]},
                                          "yaxis": {"title": {"text": "accuracy"}, "rangemode": "tozero"},
                                          "yaxis2": {"title": {"text": "loss"}, "overlaying": "y", "side": "right",
                                                     "rangemode": "tozero", "showgrid": False}}}


def day_axis(days: int, today: date) -> dict:
    """A date axis over the whole window, one tick a day, however few days have data."""
    first = today - timedelta(days=days - 1)
    return {"type": "date", "range": [f"{(first - timedelta(days=1)).isoformat()}T12:00", f"{today.isoformat()}T12:00"],
            "dtick": DAY_MS, "tickformat": "%-d %b", "tickangle": -45, "fixedrange": True}


def monitoring(series: list[dict], *, days: int = 14, today: date | None = None) -> dict:
    """Charts over the last `days` days, one line per model version: predictions, mean confidence, correction
    rate; and the predicted-class mix."""
    versions = sorted({row["model_version_id"] for row in series})
    xaxis = day_axis(days, today or date.today())

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
    over_days = {"height": 240, "margin": {"l": 48, "r": 16, "t": 30, "b": 56}, "xaxis": xaxis,
                 "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}}
    return {
        "count": {"traces": lines("count"), "layout": {**over_days, "yaxis": {"rangemode": "tozero"}}},
        "confidence": {"traces": lines("mean_confidence"), "layout": {**over_days, "yaxis": {"range": [0, 1.02]}}},
        "corrections": {"traces": lines("correction_rate"),
                        "layout": {**over_days, "yaxis": {"rangemode": "tozero", "tickformat": ".0%"}}},
        "mix": {"traces": mix, "layout": {"barmode": "stack", "height": 240, "margin": over_days["margin"],
                                          "legend": over_days["legend"],
                                          "xaxis": {"type": "category", "title": {"text": "digit"}}}},
    }
