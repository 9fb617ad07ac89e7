"""Model reports, rendered once per distinct input and then served from storage."""

from __future__ import annotations

import logging

from gateway_site import peers
from gateway_site.reports.data import inputs_sha256, report_inputs
from gateway_site.reports.render import render_html, render_pdf, report_context
from kit.errors import PeerUnavailable

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
    html = render_html(report_context(inputs, comparison, error))
    data = html.encode() if kind == "html" else render_pdf(html)
    if error is None:  # a report missing its comparison is not kept: the next request tries again
        peers.storage().store_report(version_id, data, kind=kind, input_sha256=key)
    return data
