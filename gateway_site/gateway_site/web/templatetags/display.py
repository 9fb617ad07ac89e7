"""Display filters for values that arrive as JSON strings from peer services."""

from __future__ import annotations

from django import template
from django.utils.dateparse import parse_datetime

register = template.Library()


@register.filter
def when(value: str | None) -> str:
    """An ISO timestamp as `2026-11-23 06:02:08 UTC`; empty stays empty."""
    moment = parse_datetime(value) if value else None
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


@register.filter
def clock(value: str | None) -> str:
    """An ISO timestamp as `06:02:08` (for dense tables of recent events)."""
    moment = parse_datetime(value) if value else None
    return moment.strftime("%H:%M:%S") if moment else ""


@register.filter
def get_item(mapping: dict | None, key: str):
    """`mapping[key]` in a template (keys that are not identifiers)."""
    return (mapping or {}).get(key)


@register.filter
def duration(run: dict) -> str:
    """How long a run took (or has taken so far): `1 min 05 s`, `12.3 s`; empty before it starts."""
    from django.utils import timezone

    started = parse_datetime(run.get("started_at") or "")
    if started is None:
        return ""
    ended = parse_datetime(run.get("finished_at") or "") or timezone.now()
    seconds = max((ended - started).total_seconds(), 0.0)
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s" if seconds >= 60 else f"{seconds:.1f} s"


@register.filter
def percent(value: float | None, digits: int = 0) -> str:
    """A share 0-1 as `12 %` (`12.3 %` with 1 digit); nothing for a missing one."""
    if value is None or value == "":
        return ""
    return f"{float(value) * 100:.{int(digits)}f} %"
