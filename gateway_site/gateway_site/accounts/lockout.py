"""What a locked-out login gets (a JSON 429 from the API, a page for the browser), and whose address counts."""

import ipaddress

from django.conf import settings

from gateway_site.web.errors import error_answer


def locked_out(request, credentials=None, *args, **kwargs):
    message = "Too many failed logins: this account is locked here for a while. Try again later."
    response = error_answer(request, status=429, code="locked_out", message=message)
    response["Retry-After"] = "900"
    return response


def client_ip(request) -> str:
    """The client's address: the one the front (nginx) saw, when the request came through a trusted front."""
    peer = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_REAL_IP", "").strip()
    if forwarded and _trusted(peer):
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass  # not an address: the front never sends that, so the peer's counts
    return peer


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXIES)
