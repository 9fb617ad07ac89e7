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
