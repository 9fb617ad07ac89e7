"""`user`: the accepted user-drawn samples held by storage_svc, read afresh each time."""

from __future__ import annotations

from functools import cache

import numpy as np
from django.conf import settings

from collector_svc.sources.base import Source
from kit.clients import StorageClient


@cache
def storage() -> StorageClient:
    return StorageClient(settings.STORAGE_URL, settings.SERVICE_TOKEN, timeout=settings.PEER_TIMEOUT_S, caller="collector_svc")


class UserSource(Source):
    name = "user"
    description = "accepted user-drawn samples (corrections and labelled drawings), in the order they were made"
    splits = ("train",)
    cacheable = False

    def load_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return storage().accepted_samples()
