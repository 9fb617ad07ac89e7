"""Clients for the services ml_svc calls, built once from settings."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from kit.clients import CollectorClient, StorageClient


@cache
def storage() -> StorageClient:
    return StorageClient(settings.STORAGE_URL, settings.SERVICE_TOKEN, timeout=settings.PEER_TIMEOUT_S, caller="ml_svc")


@cache
def collector() -> CollectorClient:
    return CollectorClient(settings.COLLECTOR_URL, settings.SERVICE_TOKEN, timeout=settings.PEER_TIMEOUT_S, caller="ml_svc")
