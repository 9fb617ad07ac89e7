"""The sources this collector serves, by name. Adding one is one class and one entry here."""

from __future__ import annotations

from collector_svc.sources.base import Source
from collector_svc.sources.idx_sources import FashionMnistSource, MnistSource
from collector_svc.sources.mnist5k import Mnist5kSource
from collector_svc.sources.user import UserSource
from kit.errors import AppError

SOURCE_CLASSES: dict[str, type[Source]] = {
    cls.name: cls for cls in (Mnist5kSource, MnistSource, FashionMnistSource, UserSource)
}
_instances: dict[str, Source] = {}


def get_source(name: str) -> Source:
    if name not in SOURCE_CLASSES:
        raise AppError(
            "unknown_source",
            f"unknown source {name!r}; known: {', '.join(sorted(SOURCE_CLASSES))}",
            status=404,
            details={"source": name},
        )
    if name not in _instances:
        _instances[name] = SOURCE_CLASSES[name]()
    return _instances[name]
