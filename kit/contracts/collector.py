"""What collector_svc answers (kit.clients.CollectorClient's return types; collector_svc/sources/views.py)."""

from __future__ import annotations

from typing import Any, TypedDict


class SourceSummary(TypedDict):
    source: str
    description: str
    splits: list[str]


class Sources(TypedDict):
    sources: list[SourceSummary]


class SplitSummary(TypedDict):
    count: int
    class_counts: dict[str, int]
    sha256: str


class Source(TypedDict):
    """One source with, per split, its size, digit mix and the SHA-256 of its pixels."""

    source: str
    description: str
    splits: dict[str, SplitSummary]


class RequestLog(TypedDict):
    """The collector's latest access-log lines, newest first (JSON log records)."""

    entries: list[dict[str, Any]]
