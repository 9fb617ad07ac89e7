"""`Idempotency-Key` on scenario POSTs: the same key and body create one run; a repeat gets the first answer."""

from __future__ import annotations

import hashlib
import json
from functools import wraps

from django.db import IntegrityError, transaction
from rest_framework.response import Response

from gateway_site.api.models import IdempotentRequest
from kit.errors import AppError

HEADER = "Idempotency-Key"


def idempotent(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        key = request.headers.get(HEADER, "")
        if not key:
            return view(request, *args, **kwargs)
        if len(key) > 200 or not key.isprintable():
            raise AppError("invalid", f"{HEADER} must be at most 200 printable characters.")
        digest = hashlib.sha256(json.dumps(request.data, sort_keys=True, default=str).encode()).hexdigest()
        try:
            with transaction.atomic():
                record = IdempotentRequest.objects.create(user=request.user, key=key, path=request.path, request_sha256=digest)
        except IntegrityError:
            earlier = IdempotentRequest.objects.get(user=request.user, key=key)
            if earlier.path != request.path or earlier.request_sha256 != digest:
                raise AppError("idempotency_key_reused", f"This {HEADER} was used for a different request.",
                               status=422) from None
            if earlier.status is None:
                raise AppError("in_progress", "The first request with this key is still being handled; retry shortly.",
                               status=409) from None
            replay = Response(earlier.body, status=earlier.status)
            replay["Idempotent-Replayed"] = "true"
            return replay
        try:
            response = view(request, *args, **kwargs)
        except Exception:
            record.delete()  # nothing was created: the same key may be tried again
            raise
        if response.status_code >= 500:
            record.delete()
        else:
            record.status, record.body = response.status_code, response.data
            record.save(update_fields=["status", "body"])
        return response

    return wrapped
