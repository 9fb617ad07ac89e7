"""Keeps the tests' in-memory peers honest: a fake may offer only what its typed client offers, called the same way,
and answers only what the client's contract says the real service answers.

A fake that drifts from its client (a method the client lost, a renamed argument, a field the service does not
send) would let a test pass against a call the real client cannot make; each service's tests run `drift()` over its
fakes and use them through `answering_as()`.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import get_type_hints

from kit.contracts import check

_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def drift(fake: type, client: type) -> list[str]:
    """What in `fake`'s public methods does not match `client`'s: an empty list when nothing does."""
    problems = []
    for name, method in inspect.getmembers(fake, inspect.isfunction):
        if name.startswith("_"):
            continue
        real = getattr(client, name, None)
        if real is None:
            problems.append(f"{fake.__name__}.{name}: {client.__name__} has no such method")
            continue
        problems += [f"{fake.__name__}.{name}: {problem}"
                     for problem in _mismatches(inspect.signature(method), inspect.signature(real))]
    return problems


def _mismatches(faked: inspect.Signature, real: inspect.Signature) -> list[str]:
    fake_params = {n: p for n, p in faked.parameters.items() if n != "self"}
    real_params = {n: p for n, p in real.parameters.items() if n != "self"}
    takes_any_keyword = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in fake_params.values())
    problems = []
    for name, param in real_params.items():
        if param.kind in _VARIADIC:
            continue
        mine = fake_params.get(name)
        if mine is None:
            if not takes_any_keyword:
                problems.append(f"does not take `{name}`, which the client takes")
        elif mine.kind == inspect.Parameter.KEYWORD_ONLY and param.kind != inspect.Parameter.KEYWORD_ONLY:
            problems.append(f"takes `{name}` only by keyword, the client also by position")
    for name, param in fake_params.items():
        if param.kind in _VARIADIC or param.default is not inspect.Parameter.empty:
            continue
        if name not in real_params:
            problems.append(f"requires `{name}`, which the client does not take")
        elif real_params[name].default is not inspect.Parameter.empty:
            problems.append(f"requires `{name}`, which the client makes optional")
    positional = [n for n, p in real_params.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    fake_positional = [n for n, p in fake_params.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if [n for n in fake_positional if n in positional] != [n for n in positional if n in fake_positional]:
        problems.append(f"takes ({', '.join(fake_positional)}) in another order than the client ({', '.join(positional)})")
    return problems


def answering_as(fake: type, client: type) -> type:
    """`fake` with every answer checked against the return type of `client`'s method of the same name (a contract
    in kit.contracts): a test using it fails where the fake answers what the real service would not."""
    checked = {}
    for name, method in inspect.getmembers(fake, inspect.isfunction):
        real = getattr(client, name, None)
        if name.startswith("_") or real is None or "return" not in get_type_hints(real):
            continue
        checked[name] = _checking(method, get_type_hints(real)["return"], f"{fake.__name__}.{name}")
    return type(fake.__name__, (fake,), checked)


def _checking(method, shape, where: str):
    @functools.wraps(method)
    def answer(*args, **kwargs):
        # a copy, as a real answer is decoded afresh: a caller changing it changes nothing in the fake's state
        return check(copy.deepcopy(method(*args, **kwargs)), shape, where)

    return answer
