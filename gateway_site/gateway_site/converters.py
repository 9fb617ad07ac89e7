"""URL converters shared by the API and the pages."""

from django.urls import register_converter


class ReportKind:
    """`pdf`, `html` or `json`: the formats a model report comes in."""

    regex = "pdf|html|json"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReportKind, "report_kind")
