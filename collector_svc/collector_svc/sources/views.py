"""collector_svc's API: source descriptions and batches of images."""

from __future__ import annotations

import json
from collections import deque

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from collector_svc.sources.registry import SOURCE_CLASSES, get_source
from kit import imagepack
from kit.errors import AppError


def _int_param(request, name: str, default: int | None, *, minimum: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        if default is None:
            raise AppError("invalid", f"{name} is required", details={name: "required"})
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AppError("invalid", f"{name} must be an integer", details={name: raw}) from None
    if not minimum <= value <= maximum:
        raise AppError(
            "out_of_range", f"{name} must be between {minimum} and {maximum}", details={name: value}
        )
    return value


@require_GET
def info(request):
    name = request.GET.get("source")
    if name is None:
        return JsonResponse(
            {"sources": [
                {"source": name, "description": cls.description, "splits": list(get_source(name).splits)}
                for name, cls in SOURCE_CLASSES.items()
            ]}
        )
    return JsonResponse(get_source(name).describe())


@require_GET
def batch(request):
    """`?source=&split=&size=&offset=`: images [offset, offset+size) in a stable order."""
    source = get_source(request.GET.get("source", ""))
    images, labels = source.arrays(request.GET.get("split", "train"))
    total = len(labels)
    size = _int_param(request, "size", None, minimum=1, maximum=settings.MAX_BATCH_SIZE)
    offset = _int_param(request, "offset", 0, minimum=0, maximum=max(total - 1, 0))
    end = min(offset + size, total)
    response = HttpResponse(imagepack.pack(images[offset:end], labels[offset:end]), content_type=imagepack.CONTENT_TYPE)
    response["X-Total"] = str(total)
    response["X-Next-Offset"] = str(end) if end < total else ""
    request.log_fields = {"rows": end - offset}
    return response


@require_GET
def request_log(request):
    """The most recent request-log lines (newest first), `?limit=` up to LOG_TAIL_MAX."""
    limit = _int_param(request, "limit", 100, minimum=1, maximum=settings.LOG_TAIL_MAX)
    lines: deque[str] = deque(maxlen=limit * 4)
    try:
        with open(settings.LOG_FILE, encoding="utf-8", errors="replace") as handle:
            lines.extend(handle)
    except FileNotFoundError:
        pass
    entries = []
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "platform.access" and entry.get("path") != "/log":
            entries.append(entry)
        if len(entries) == limit:
            break
    return JsonResponse({"entries": entries})
