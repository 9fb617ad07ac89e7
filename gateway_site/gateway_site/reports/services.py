"""Model reports, rendered once per distinct input and then served from storage."""

from __future__ import annotations

import logging

from gateway_site import peers
from gateway_site.reports.data import inputs_sha256, report_inputs
from gateway_site.reports.render import render_html, render_pdf, report_context
from kit.errors import AppError, PeerUnavailable

logger = logging.getLogger(__name__)


def model_report(version_id: int, kind: str) -> bytes:
    """The report of a version as `html` or `pdf` bytes; reused until anything it shows changes."""
    inputs = report_inputs(version_id)
    key = inputs_sha256(inputs)
    stored = peers.storage().stored_report(version_id, kind=kind, input_sha256=key)
    if stored is not None:
        return stored
    comparison, error = None, None
    production = inputs["production_id"]
    stored = inputs["model"].get("metrics", {}).get("comparison")
    if stored and stored.get("against", {}).get("id") == production:
        comparison = {**stored, "baseline": stored["against"]}  # made by ml_svc when the version was trained
    elif production is not None and production != version_id:
        try:
            comparison = peers.ml().compare(production, version_id)
        except PeerUnavailable as exc:
            error = exc.message
    overlays, overlay_error = mistake_overlays(version_id, inputs["model"].get("metrics", {}).get("confident_mistakes", []))
    html = render_html(report_context(inputs, comparison, error, overlays))
    data = html.encode() if kind == "html" else render_pdf(html)
    if error is None and overlay_error is None:  # a report missing a part is not kept: the next request tries again
        peers.storage().store_report(version_id, data, kind=kind, input_sha256=key)
    return data


def mistake_overlays(version_id: int, mistakes: list[dict]) -> tuple[dict[int, str], str | None]:
    """Why the version was sure of each of its most confident mistakes (its own answer: the mistake's `predicted`):
    {index: overlay PNG (base64)}, and what kept them from being made, if anything."""
    shown = [m for m in mistakes if "image" in m]
    if not shown:
        return {}, None
    try:
        answers = peers.ml().overlays(model_id=version_id, images=[m["image"] for m in shown])["overlays"]
    except AppError as exc:
        if exc.status < 500:  # a version ml_svc refuses to explain: the report shows the mistakes alone, for good
            logger.warning("no explanations for v%s's mistakes: %s", version_id, exc.message)
            return {}, None
        return {}, exc.message  # ml_svc away or overloaded: not kept, the next request tries again
    return {m["index"]: answer["overlay_png"] for m, answer in zip(shown, answers, strict=True)}, None
