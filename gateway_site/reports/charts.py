"""Static charts for reports, as SVG text (matplotlib, no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams["svg.fonttype"] = "none"  # text stays text: selectable in the PDF


def training_curves_svg(epochs: list[dict]) -> str:
    """Loss and accuracy per epoch, side by side; empty when there are no epochs."""
    if not epochs:
        return ""
    x = [e["epoch"] for e in epochs]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(7.2, 2.4))
    loss_axis.plot(x, [e["loss"] for e in epochs], color="#3559e0", marker="o", markersize=3)
    loss_axis.set_title("training loss", fontsize=9)
    accuracy_axis.plot(x, [e["train_accuracy"] for e in epochs], color="#3559e0", marker="o", markersize=3, label="train")
    if all("val_accuracy" in e for e in epochs):
        accuracy_axis.plot(x, [e["val_accuracy"] for e in epochs], color="#067647", marker="o", markersize=3, label="held out")
    accuracy_axis.set_title("accuracy", fontsize=9)
    accuracy_axis.legend(fontsize=7, loc="lower right")
    for axis in (loss_axis, accuracy_axis):
        axis.set_xlabel("epoch", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]
