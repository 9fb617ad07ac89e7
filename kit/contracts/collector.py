"""What collector_svc answers (kit.clients.CollectorClient's return types; collector_svc/sources/views.py)."""

# No `from __future__ import annotations` here: Python 3.11's TypedDict cannot see NotRequired in a string.
from typing import Any, Literal, NotRequired, TypedDict

from kit.contracts import Timestamp


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


class UploadedFile(TypedDict):
    name: str
    bytes: int
    sha256: str


class Upload(TypedDict):
    """A checked upload, kept until its run reads it: what it holds (`labelled` of `count` images carry a label)."""

    id: str
    purpose: Literal["dataset", "score"]
    format: Literal["zip", "idx", "csv"]
    name: str
    files: list[UploadedFile]
    count: int
    labelled: int
    class_counts: dict[str, int]
    uploaded_by: str
    created_at: Timestamp


class UploadItem(TypedDict):
    """One image of an upload: `image` is the base64 of its canonical 28x28 uint8 pixels, or `error` says why it
    could not be read; `label` is None where the upload gave none."""

    name: str
    label: int | None
    image: NotRequired[str]
    error: NotRequired[str]


class UploadBatch(TypedDict):
    items: list[UploadItem]
    next_offset: int | None
