"""One strict input layer: request bodies (depth, integer range, NUL), query and form values (ASCII digits,
bounds, no control characters), and DRF serializers that also refuse fields they do not know."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import orjson
from rest_framework.parsers import BaseParser

from kit.errors import AppError


def validated(serializer_class, data) -> dict:
    """The validated data, or a 400 naming each bad or unknown field."""
    if not isinstance(data, dict):
        raise AppError("invalid", "The body must be a JSON object.")
    unknown = sorted(set(data) - set(serializer_class().fields))
    if unknown:
        raise AppError(
            "invalid", f"Unknown fields: {', '.join(unknown)}.", details={f: "unknown field" for f in unknown}
        )
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# What the public API takes as JSON: nested at most this deep, integers that every client holds exactly.
MAX_JSON_DEPTH = 32
MAX_JSON_INTEGER = 2**53
# The largest id or count a query or form may name (PostgreSQL's integer).
MAX_ID = 2**31 - 1


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON; a 400 naming the problem for anything else: not JSON (orjson also refuses
    nesting past 1,024 levels and NaN, and never recurses in Python), nested past MAX_JSON_DEPTH, an integer
    past ±MAX_JSON_INTEGER, or a NUL character in a string (PostgreSQL cannot store one)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AppError("parse_error", f"JSON parse error - {exc}") from None
    if b"\\u0000" in raw:  # JSON can carry a NUL only escaped; looked for in C, not string by string
        raise AppError("invalid", "The body contains a NUL character.", details={"body": "NUL character"})
    check_json(value)
    return value


def check_json(value: Any) -> None:
    """Depth and integer range of a decoded JSON value, without recursion. A list is walked only when it holds
    containers: a list of numbers (28x28 pixel rows) is bounded by the field that takes it, and looking at each
    number would cost a prediction more than parsing it."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_JSON_DEPTH:
            raise AppError("too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels is refused.")
        if isinstance(item, dict):
            for child in item.values():
                if isinstance(child, dict | list):
                    stack.append((child, depth + 1))
                elif type(child) is int and not -MAX_JSON_INTEGER <= child <= MAX_JSON_INTEGER:
                    raise _too_large_integer()
        elif isinstance(item, list) and _holds_containers(item):  # a bare scalar body is the views' to refuse
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))


def _holds_containers(items: list) -> bool:
    """Whether a list holds objects or lists that hold containers in turn; a matrix of numbers does not."""
    first = items[0] if items else None
    return isinstance(first, dict) or (isinstance(first, list) and bool(first) and isinstance(first[0], dict | list))


def _too_large_integer() -> AppError:
    return AppError("number_too_large", f"Integers beyond ±2^53 ({MAX_JSON_INTEGER:,}) are refused.")


_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def clean_text(raw: Any, *, field: str, max_length: int = 200) -> str:
    """Text from a client: no NUL or other control character, at most `max_length` characters."""
    text = str(raw)
    if _CONTROL_CHARACTER.search(text):
        raise AppError("invalid", f"{field} contains a control character.", details={field: "control character"})
    if len(text) > max_length:
        raise AppError("invalid", f"{field} is longer than {max_length} characters.", details={field: "too long"})
    return text


def ascii_int(raw: Any, *, field: str, minimum: int = 1, maximum: int = MAX_ID) -> int:
    """A whole number written in ASCII digits (not '²' or '٣', which str.isdigit accepts), within bounds."""
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or not minimum <= int(text) <= maximum:
        raise AppError("invalid", f"{field} must be a whole number from {minimum} to {maximum}.",
                       details={field: f"a whole number from {minimum} to {maximum}"})
    return int(text)


def calendar_day(raw: Any, *, field: str) -> date:
    """A day written like 2026-11-23 in ASCII digits, and one the calendar has (not 2026-02-30)."""
    text = str(raw)
    try:
        # fromisoformat also takes ISO week dates (2026-W47-1): only YYYY-MM-DD is a day here
        if len(text) != 10 or not text.isascii() or text[4] != "-" or text[7] != "-":
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise AppError("invalid", f"{field} must be a date like 2026-11-23.", details={field: "not a date"}) from None


class StrictJSONParser(BaseParser):
    """DRF's JSON parser with parse_json_body's limits (the stdlib parser recurses, and takes any integer)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_json_body(stream.read() if stream is not None else b"")
