"""collector_svc's API: source descriptions and batches of images."""

from __future__ import annotations

import json
from collections import deque

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from collector_svc.sources import uploads
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


@require_POST
def upload_create(request):
    """Multipart: `file` (once, or twice for an IDX pair), `purpose` (dataset|score), `uploaded_by`, `name`."""
    files = [(f.name or "upload", f.read()) for f in request.FILES.getlist("file")]
    if not files:
        raise AppError("invalid", "Send the file to upload as the multipart field `file`.", details={"file": "required"})
    uploaded_by = request.POST.get("uploaded_by", "")
    if not 0 < len(uploaded_by) <= 150:
        raise AppError("invalid", "uploaded_by is required.", details={"uploaded_by": "required"})
    name = request.POST.get("name", "").strip()[:200] or uploads.display_name(files[0][0]).split(".")[0]
    upload = uploads.store(files, purpose=request.POST.get("purpose", ""), uploaded_by=uploaded_by, name=name)
    request.log_fields = {"rows": upload["count"]}
    return JsonResponse(upload, status=201)


@require_http_methods(["GET", "DELETE"])
def upload_detail(request, upload_id: str):
    if request.method == "DELETE":
        uploads.forget(upload_id)
        return HttpResponse(status=204)
    return JsonResponse(uploads.describe(upload_id))


@require_GET
def upload_batch(request, upload_id: str):
    """`?offset=&size=`: the upload's items [offset, offset+size), each canonical or saying why it is not."""
    count = uploads.describe(upload_id)["count"]
    size = _int_param(request, "size", None, minimum=1, maximum=settings.MAX_UPLOAD_BATCH)
    offset = _int_param(request, "offset", 0, minimum=0, maximum=max(count - 1, 0))
    items = uploads.batch(upload_id, offset=offset, size=size)
    request.log_fields = {"rows": len(items)}
    end = offset + len(items)
    return JsonResponse({"items": items, "next_offset": end if end < count else None})


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
