"""What each service's API answers, one module per service (storage, ml, collector, gateway).

The shapes are TypedDicts: the clients' return types, the gateway's documented response bodies (`/api/schema/`)
and what the contract tests hold the real views, the fakes and the fuzzed API to (`problems`).
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

TIMESTAMP = "date-time"
Timestamp = Annotated[str, TIMESTAMP]  # ISO 8601 with a zone, e.g. "2026-12-03T09:00:00.123456Z"
EXAMPLE_TIME = "2026-01-01T00:00:00Z"


def problems(value: Any, shape: Any, where: str = "answer") -> list[str]:
    """How `value` (decoded JSON) differs from `shape`: missing or unknown fields, wrong types. Empty if it conforms."""
    if shape is Any:
        return []
    origin, args = get_origin(shape), get_args(shape)
    if origin in (Union, types.UnionType):
        if any(not problems(value, option, where) for option in args):
            return []
        return [f"{where}: {_show(value)} is none of {' | '.join(_name(a) for a in args)}"]
    if origin is Literal:
        return [] if value in args else [f"{where}: {_show(value)} is not one of {list(args)}"]
    if is_typeddict(shape):
        if not isinstance(value, dict):
            return [f"{where}: {_show(value)} is not an object ({shape.__name__})"]
        fields = get_type_hints(shape)
        found = [f"{where}: `{key}` is missing ({shape.__name__})" for key in sorted(shape.__required_keys__ - value.keys())]
        found += [f"{where}: `{key}` is not in the contract ({shape.__name__})" for key in sorted(value.keys() - fields.keys())]
        for key in value.keys() & fields.keys():
            found += problems(value[key], fields[key], f"{where}.{key}")
        return found
    if origin is list or shape is list:
        if not isinstance(value, list):
            return [f"{where}: {_show(value)} is not a list"]
        item = args[0] if args else Any
        return [p for i, v in enumerate(value) for p in problems(v, item, f"{where}[{i}]")]
    if origin is dict or shape is dict:
        if not isinstance(value, dict):
            return [f"{where}: {_show(value)} is not an object"]
        item = args[1] if args else Any
        return [p for k, v in value.items() for p in problems(v, item, f"{where}.{k}")]
    if shape is type(None) or shape is None:
        return [] if value is None else [f"{where}: {_show(value)} is not null"]
    if shape is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif shape is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, shape)
    return [] if ok else [f"{where}: {_show(value)} is not {_name(shape)}"]


def check(value: Any, shape: Any, where: str = "answer") -> Any:
    """`value` itself if it conforms to `shape`; AssertionError listing the differences if not (for tests)."""
    found = problems(value, shape, where)
    more = [f"... and {len(found) - 12} more"] if len(found) > 12 else []
    assert not found, "\n".join(found[:12] + more)
    return value


def example(shape: Any, **fields: Any) -> Any:
    """The plainest value of `shape` (an object: its required fields; ids 1, texts empty, lists empty, a choice its
    first option, an optional field null), with `fields` in place: what the tests' in-memory peers answer."""
    origin, args = get_origin(shape), get_args(shape)
    if is_typeddict(shape):
        hints = get_type_hints(shape, include_extras=True)
        value = {key: example(hints[key]) for key in hints if key in shape.__required_keys__}
        unknown = fields.keys() - hints.keys()
        assert not unknown, f"{shape.__name__} has no field {', '.join(sorted(unknown))}"
        return value | fields
    assert not fields, "only an object takes fields"
    if origin is Annotated:
        return EXAMPLE_TIME if TIMESTAMP in shape.__metadata__ else example(args[0])
    if origin in (Union, types.UnionType):
        return None if type(None) in args else example(args[0])
    if origin is Literal:
        return args[0]
    if origin is list or shape is list:
        return []
    if origin is dict or shape is dict or shape is Any:
        return {}
    return {int: 1, float: 0.0, str: "", bool: False}[shape]


def _name(shape: Any) -> str:
    return getattr(shape, "__name__", None) or repr(shape)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
