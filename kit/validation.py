"""Input validation with DRF serializers that also refuses fields it does not know."""

from __future__ import annotations

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
