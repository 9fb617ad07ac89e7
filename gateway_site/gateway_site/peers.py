"""Clients for the services behind the gateway, built once from settings."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from kit.clients import CollectorClient, MLClient, StorageClient


def _client(cls, url: str):
    return cls(url, settings.SERVICE_TOKEN, timeout=settings.PEER_TIMEOUT_S, caller="gateway_site")


@cache
def storage() -> StorageClient:
    return _client(StorageClient, settings.STORAGE_URL)


@cache
def collector() -> CollectorClient:
    return _client(CollectorClient, settings.COLLECTOR_URL)


@cache
def ml() -> MLClient:
    return _client(MLClient, settings.ML_URL)


def all_peers() -> dict:
    return {"storage_svc": storage(), "collector_svc": collector(), "ml_svc": ml()}
