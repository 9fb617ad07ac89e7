"""Webhooks, what every side agrees on: the event types, where a delivery may go, and its signature.

A delivery is an HTTPS POST of a JSON body with the headers
  X-DigitLab-Event: the event type            X-DigitLab-Delivery: the delivery's id
  X-DigitLab-Timestamp: Unix seconds          X-DigitLab-Signature: sha256=<hex>
where the signature is HMAC-SHA256, keyed with the webhook's secret, over `<timestamp>.<body bytes>`: a receiver
recomputes it (`verify`) and refuses an old timestamp, so a recorded delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from urllib.parse import urlsplit

EVENT_TYPES = ("run.finished", "version.registered", "alias.moved", "gate.refused", "rollback.auto", "drift.alert")
SIGNATURE_HEADER, TIMESTAMP_HEADER = "X-DigitLab-Signature", "X-DigitLab-Timestamp"
EVENT_HEADER, DELIVERY_HEADER = "X-DigitLab-Event", "X-DigitLab-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, headers, body: bytes, *, tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """Whether a delivery's headers carry a valid signature of `body` made within `tolerance_s` (receivers' side)."""
    try:
        timestamp = int(headers[TIMESTAMP_HEADER])
    except (KeyError, TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), headers.get(SIGNATURE_HEADER, ""))


def destination_problem(url: str, *, allow_private: bool, resolve=socket.getaddrinfo) -> str | None:
    """Why a delivery may not go to `url`, or None: HTTPS only, no credentials in it, and every address its host
    resolves to public unless `allow_private` (loopback, private, link-local, reserved ranges are the platform's own
    network: a webhook must not reach into it)."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        return "the URL is not valid"
    if parts.scheme != "https":
        return "webhooks are delivered over HTTPS only"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "the URL must not carry credentials (the signature authenticates the platform)"
    try:
        addresses = {info[4][0] for info in resolve(parts.hostname, port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError):
        return f"{parts.hostname} does not resolve"
    if allow_private:
        return None
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            return (f"{parts.hostname} resolves to {ip}, a private, loopback or reserved address: refused unless "
                    "the platform allows private destinations (storage webhook_allow_private)")
    return None
