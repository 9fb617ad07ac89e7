"""What several page families share: the serving panel, a section that survives a peer being down."""

from __future__ import annotations

from gateway_site.scenarios import selectors
from kit.errors import PeerUnavailable


def top_digits(probabilities: list[float], n: int = 3) -> list[dict]:
    ranked = sorted(range(10), key=lambda d: -probabilities[d])[:n]
    return [{"digit": d, "percent": round(probabilities[d] * 100, 1)} for d in ranked]


def serving_context() -> dict:
    """What serves, or, while nothing does, how far the first model is (for the status panel)."""
    serving, error = optional_section(selectors.serving_version, None)
    first_model = None
    if serving is None and error is None:
        first_model, error = optional_section(selectors.first_model_status, None)
    return {"serving": serving, "first_model": first_model, "serving_error": error}


def optional_section(call, default):
    """A section that needs a peer shows why it is empty instead of failing the whole page."""
    try:
        return call(), None
    except PeerUnavailable as exc:
        return default, exc.message
