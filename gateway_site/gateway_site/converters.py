"""URL converters shared by the API and the pages: <report_kind:>, and kit's <id:>."""

from django.urls import register_converter

import kit.converters  # noqa: F401 - registers <id:>


class ReportKind:
    """`pdf`, `html` or `json`: the formats a model report comes in."""

    regex = "pdf|html|json"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReportKind, "report_kind")
