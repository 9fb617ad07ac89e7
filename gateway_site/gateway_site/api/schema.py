"""What each API view answers, declared once from the contracts (kit.contracts.gateway).

`@answers(GET=Shape, POST=(201, Shape))` documents the body of every answer in `/api/schema/` (a DRF serializer
made from the TypedDict, so each shape is one named component) and the JSON error of every refusal; it also
records the shapes on the view (`view.answers`) so the fuzz test holds each real answer to them exactly.
"""

from __future__ import annotations

import types
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers

from kit.contracts.gateway import Error

REFUSALS = {
    400: "invalid input",
    401: "no or wrong credentials",
    403: "the role does not allow it",
    404: "no such thing, or not yours",
    409: "it conflicts with the current state",
    413: "the body or image is too large",
    429: "too many requests: wait `Retry-After` seconds",
    503: "a peer service is unavailable or the service is overloaded: retry after `Retry-After` seconds",
}

Binary = OpenApiTypes.BINARY


def answers(**by_method: Any):
    """Declares a view's answer per HTTP method: a shape (status 200), `(status, shape)`, `(status, None)` for no
    body, or `{(status, media type): shape}` for a view answering several media types."""

    def decorate(view):
        declared = {}
        for method, answer in by_method.items():
            responses = answer if isinstance(answer, dict) else dict([answer if isinstance(answer, tuple) else (200, answer)])
            declared[method] = responses
            documented = {code: _documented(shape) for code, shape in responses.items()}
            errors = {code: OpenApiResponse(serializer_for(Error), description=text) for code, text in REFUSALS.items()}
            view = extend_schema(methods=[method], responses={**errors, **documented})(view)
        view.answers = declared
        return view

    return decorate


def contract_of(view, method: str, status: int, media_type: str = "application/json") -> Any:
    """The shape `view` declares for this answer; Error for a refusal; None where no JSON body is declared."""
    if status >= 400:
        return Error
    declared = getattr(view, "answers", {}).get(method, {})
    return declared.get(status, declared.get((status, media_type)))


def _documented(shape: Any) -> Any:
    return serializer_for(shape) if is_typeddict(shape) else shape


@cache
def serializer_for(shape: Any) -> type[serializers.Serializer]:
    """A DRF serializer with the fields of the TypedDict `shape`, named as it is (one schema component each)."""
    hints = get_type_hints(shape)
    fields = {name: _field(hint, required=name in shape.__required_keys__) for name, hint in hints.items()}
    return type(shape.__name__, (serializers.Serializer,), {**fields, "__doc__": shape.__doc__ or ""})


def _field(hint: Any, **options: Any) -> serializers.Field:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        present = tuple(a for a in args if a is not type(None))
        if len(present) < len(args):
            options["allow_null"] = True
        if len(present) == 1:
            return _field(present[0], **options)
        return _one_of(present, **options)
    if is_typeddict(hint):
        return serializer_for(hint)(**options)
    if origin is Literal:
        return serializers.ChoiceField(choices=list(args), **options)
    if origin is list:
        item = args[0]
        if is_typeddict(item):
            return serializer_for(item)(many=True, **options)
        if get_origin(item) in (Union, types.UnionType):
            return _one_of(get_args(item), many=True, **options)
        return serializers.ListField(child=_field(item), **options)
    if origin is dict:
        value = args[1] if args else Any
        child = serializers.JSONField() if value is Any else _field(value)
        return serializers.DictField(child=child, **options)
    simple = {int: serializers.IntegerField, float: serializers.FloatField, str: serializers.CharField,
              bool: serializers.BooleanField}
    if hint in simple:
        return simple[hint](**options)
    return serializers.JSONField(**options)


def _one_of(shapes: tuple, **options: Any) -> serializers.Field:
    name = "Or".join(shape.__name__ for shape in shapes)
    return PolymorphicProxySerializer(component_name=name, serializers=[serializer_for(s) for s in shapes],
                                      resource_type_field_name=None, **options)
