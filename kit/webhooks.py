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
    """Whether a delivery's headers carry a valid signature of `body` made within `tolerance_s` (receivers' side).
    A delivery may come twice (a retry after a lost answer): receivers deduplicate by the event's `id`."""
    try:
        timestamp = int(headers[TIMESTAMP_HEADER])
    except (KeyError, TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    given = headers.get(SIGNATURE_HEADER, "")
    given = given.encode("utf-8", "replace") if isinstance(given, str) else bytes(given)
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), given)


# IPv6 ranges that carry an IPv4 address inside (NAT64, 6to4, IPv4-compatible): they may reach a private IPv4 host.
_IPV4_CARRIERS = [ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96")]


def _private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _private(ip.ipv4_mapped)
        if any(ip in network for network in _IPV4_CARRIERS):
            return True
    return not ip.is_global or ip.is_multicast


def destination(url: str, *, allow_private: bool, resolve=socket.getaddrinfo) -> tuple[str | None, list[str]]:
    """(why a delivery may not go to `url` or None, the addresses its host resolves to, checked): HTTPS only, no
    credentials in it, and every address public unless `allow_private` (loopback, private, link-local, reserved
    ranges, and IPv6 forms of them, are the platform's own network: a webhook must not reach into it). A sender
    connects to these very addresses, so that a name resolved again cannot lead elsewhere."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        return "the URL is not valid", []
    if parts.scheme != "https":
        return "webhooks are delivered over HTTPS only", []
    if not parts.hostname:
        return "the URL has no host", []
    if parts.username or parts.password:
        return "the URL must not carry credentials (the signature authenticates the platform)", []
    try:
        addresses = sorted({info[4][0] for info in resolve(parts.hostname, port, type=socket.SOCK_STREAM)})
    except (OSError, UnicodeError):
        return f"{parts.hostname} does not resolve", []
    if not allow_private:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if _private(ip):
                return (f"{parts.hostname} resolves to {ip}, a private, loopback or reserved address: refused unless "
                        "the platform allows private destinations (storage webhook_allow_private)"), []
    return None, addresses


def destination_problem(url: str, *, allow_private: bool, resolve=socket.getaddrinfo) -> str | None:
    return destination(url, allow_private=allow_private, resolve=resolve)[0]
