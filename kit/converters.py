"""URL converters of every service's paths."""

from __future__ import annotations

from django.urls import register_converter

from kit.validation import MAX_ID


class DatabaseId:
    """A database id in a path: 1 to 10 ASCII digits within PostgreSQL's integer. Anything else does not match
    (a 404), rather than reaching the database as a number it cannot hold (a 500)."""

    regex = "[0-9]{1,10}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(DatabaseId, "id")
