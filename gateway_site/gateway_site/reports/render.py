"""A model report as HTML and as PDF. WeasyPrint may only read data: URLs: never the network."""

from __future__ import annotations

import weasyprint
from django.template.loader import render_to_string

from gateway_site.images import pixels_png_data_url
from gateway_site.reports.charts import training_curves_svg


class NetworkRefused(ValueError):
    pass


class InlineOnlyFetcher(weasyprint.URLFetcher):
    """WeasyPrint's fetcher limited to inline `data:` URLs: http, file and every other scheme are refused."""

    def __init__(self):
        super().__init__(allowed_protocols={"data"}, allow_redirects=False)

    def fetch(self, url, headers=None):
        if not url.startswith("data:"):
            raise NetworkRefused(f"the report may not fetch {url[:80]}")
        return super().fetch(url, headers)


def heat(count: int, row_total: int, diagonal: bool) -> str:
    share = count / row_total if row_total else 0.0
    if count == 0:
        return "background:#fff;color:#98a2b3"
    colour = (53, 89, 224) if diagonal else (180, 35, 24)
    alpha = 0.15 + 0.85 * share if diagonal else min(1.0, 0.2 + 4 * share)
    text = "#fff" if alpha > 0.55 else "#1d2433"
    return f"background:rgba({colour[0]},{colour[1]},{colour[2]},{alpha:.2f});color:{text}"


def report_context(inputs: dict, comparison: dict | None, comparison_error: str | None,
                   overlays: dict[int, str] | None = None) -> dict:
    """`overlays`: the explanation overlay (PNG, base64) of each most confident mistake by its index."""
    overlays = overlays or {}
    model = inputs["model"]
    metrics = model.get("metrics", {})
    matrix = metrics.get("confusion_matrix") or []
    rows = [
        {"label": i, "cells": [{"count": c, "style": heat(c, sum(row), i == j)} for j, c in enumerate(row)], "total": sum(row)}
        for i, row in enumerate(matrix)
    ]
    per_class = [{"digit": d, **metrics["per_class"][d]} for d in sorted(metrics.get("per_class", {}))]
    mistakes = [{**m, "image_url": pixels_png_data_url(m["image"], scale=3),
                 "overlay_url": "data:image/png;base64," + overlays[m["index"]] if m.get("index") in overlays else None}
                for m in metrics.get("confident_mistakes", []) if "image" in m]
    if comparison:
        comparison = {**comparison, "per_class_rows": [{"digit": d, **v} for d, v in sorted(comparison["per_class"].items())]}
        for key in ("fixed", "broken"):
            comparison[key] = [{**s, "image_url": pixels_png_data_url(s["image"], scale=2)} for s in comparison[key][:12]]
    user_datasets = [d for d in inputs["datasets"] if d["source"] == "user"]
    return {
        "model": model, "metrics": metrics, "per_class": per_class, "confusion": rows, "mistakes": mistakes,
        "curves_svg": training_curves_svg(metrics.get("curves", [])), "datasets": inputs["datasets"],
        "user_samples": sum(d["num_samples"] for d in user_datasets), "ledger": inputs["ledger"],
        "evaluations": inputs["evaluations"],
        "comparison": comparison, "comparison_error": comparison_error, "production_id": inputs["production_id"],
        "software": inputs["software"], "split": metrics.get("split", {}),
    }


def render_html(context: dict) -> str:
    return render_to_string("reports/model_card.html", context)


def render_pdf(html: str) -> bytes:
    return weasyprint.HTML(string=html, url_fetcher=InlineOnlyFetcher(), base_url="about:blank").write_pdf()
