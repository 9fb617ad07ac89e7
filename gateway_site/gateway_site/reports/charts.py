"""Static charts for reports, as small SVG text.

Written out directly rather than with matplotlib: its SVG of the two training curves had ~420 nested
elements, which cost 40-90 ms to draw and another 80 ms for WeasyPrint to lay out, a quarter of a
cold PDF build; these have about 60 and cost a few milliseconds in both.
"""

from __future__ import annotations

import math

WIDTH, HEIGHT = 250.0, 165.0  # one panel, in SVG user units (the report scales the picture to its width)
LEFT, RIGHT, TOP, BOTTOM = 38.0, 8.0, 18.0, 28.0
MARKED_POINTS = 15
TEXT = 'font-family="DejaVu Sans, sans-serif" fill="#475467"'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        high = low + (abs(low) or 1.0) * 0.1
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def label(value: float) -> str:
    return f"{value:.4g}"


def panel(title: str, series: list[tuple[str, str, list[float]]], x: list[int], left: float) -> list[str]:
    """One line chart at horizontal offset `left`: axes, grid, ticks, one polyline per (name, colour, values)."""
    values = [v for _, _, ys in series for v in ys]
    margin = (max(values) - min(values)) * 0.05  # no point exactly on the frame, no axis below zero for >= 0
    low = min(values) - margin if min(values) < 0 else max(min(values) - margin, 0.0)
    y_ticks = nice_ticks(low, max(values) + margin)
    if min(x) == max(x):  # one epoch: its point in the middle
        x_ticks = [x[0] - 1, x[0], x[0] + 1]
    else:
        x_ticks = [int(t) for t in nice_ticks(min(x), max(x), count=6) if t == int(t)]
    x_low, x_high = x_ticks[0], x_ticks[-1] if x_ticks[-1] > x_ticks[0] else x_ticks[0] + 1
    y_low, y_high = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(value: float) -> float:
        return left + LEFT + (value - x_low) / (x_high - x_low) * plot_w

    def py(value: float) -> float:
        return TOP + plot_h - (value - y_low) / (y_high - y_low) * plot_h

    parts = [f'<text x="{left + LEFT + plot_w / 2 - (40 if len(series) > 1 else 0):.1f}" y="11" font-size="9" text-anchor="middle" {TEXT}>{title}</text>']
    for tick in y_ticks:
        y = py(tick)
        parts.append(f'<line x1="{left + LEFT:.1f}" x2="{left + LEFT + plot_w:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaecf0"/>')
        parts.append(f'<text x="{left + LEFT - 3:.1f}" y="{y + 2.5:.1f}" font-size="7" text-anchor="end" {TEXT}>{label(tick)}</text>')
    for tick in x_ticks:
        parts.append(f'<text x="{px(tick):.1f}" y="{TOP + plot_h + 10:.1f}" font-size="7" text-anchor="middle" {TEXT}>{tick}</text>')
    parts.append(f'<text x="{left + LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4:.1f}" font-size="8" text-anchor="middle" {TEXT}>epoch</text>')
    parts.append(f'<rect x="{left + LEFT:.1f}" y="{TOP:.1f}" width="{plot_w:.1f}" height="{plot_h:.1f}" fill="none" stroke="#98a2b3"/>')
    for position, (name, colour, ys) in enumerate(series):
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, ys, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        if len(x) <= MARKED_POINTS:  # few epochs: each one visible as a dot (a single one has no line)
            parts.extend(f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2" fill="{colour}"/>' for a, b in zip(x, ys, strict=True))
        if len(series) > 1:  # legend in one row above the plot's right end, clear of the data
            y = 8.0
            x0 = left + LEFT + plot_w - 48 * (len(series) - position)
            parts.append(f'<line x1="{x0:.1f}" x2="{x0 + 10:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="1.5"/>')
            parts.append(f'<text x="{x0 + 13:.1f}" y="{y + 2.5:.1f}" font-size="7" {TEXT}>{name}</text>')
    return parts


def training_curves_svg(epochs: list[dict]) -> str:
    """Loss and accuracy per epoch, side by side; empty when there are no epochs."""
    if not epochs:
        return ""
    x = [int(e["epoch"]) for e in epochs]
    accuracy = [("train", "#3559e0", [float(e["train_accuracy"]) for e in epochs])]
    if all("val_accuracy" in e for e in epochs):
        accuracy.append(("held out", "#067647", [float(e["val_accuracy"]) for e in epochs]))
    parts = [*panel("training loss", [("loss", "#3559e0", [float(e["loss"]) for e in epochs])], x, 0.0),
             *panel("accuracy", accuracy, x, WIDTH)]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {2 * WIDTH:.0f} {HEIGHT:.0f}" '
            f'role="img" aria-label="training loss and accuracy per epoch">{"".join(parts)}</svg>')
