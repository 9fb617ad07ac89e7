"""Call a WSGI application in-process: for tests of kit.hotpath routes (Django's test client skips them), and
as a typed client's transport in the contract tests (`WsgiTransport`), so the real client meets the real views."""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict


@dataclass
class WsgiAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(app, method: str, path: str, body: bytes | dict | None = None, *, headers: dict[str, str] | None = None,
         content_type: str = "application/json", chunked: bool = False, query: str = "") -> WsgiAnswer:
    """`chunked`: the body comes without a Content-Length, as a server passes on a chunked request."""
    data = json.dumps(body).encode() if isinstance(body, dict | list) else (body or b"")
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path.encode().decode("latin-1"), "QUERY_STRING": query, "SERVER_NAME": "localhost",
        "SERVER_PORT": "80", "HTTP_HOST": "localhost", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data), "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": str(len(data)),
        "CONTENT_TYPE": content_type, "wsgi.version": (1, 0), "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1",
    }
    if chunked:
        del environ["CONTENT_LENGTH"]
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: dict = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(response_headers)

    chunks = app(environ, start_response)
    content = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return WsgiAnswer(seen["status"], seen["headers"], content)


class WsgiTransport(requests.adapters.BaseAdapter):
    """Carries a `requests` session's calls to a WSGI application in this process (see ServiceClient's `transport`)."""

    def __init__(self, app):
        super().__init__()
        self.app = app

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        url = urlsplit(request.url)
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        headers = {name: value for name, value in request.headers.items()
                   if name.lower() not in ("content-type", "content-length")}
        answer = call(self.app, request.method, url.path, body, headers=headers,
                      content_type=request.headers.get("Content-Type", ""), query=url.query)
        response = requests.Response()
        response.status_code, response._content = answer.status, answer.body
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url, response.request, response.encoding = request.url, request, "utf-8"
        return response

    def close(self) -> None:
        pass


class ContractClient:
    """A typed client on `WsgiTransport`, every answer checked against its declared return type (kit.contracts);
    it remembers which calls were made, so a contract test can show it made them all (`not_called`)."""

    def __init__(self, client_class: type, app, token: str):
        from kit.fakecheck import answering_as

        self.client_class = client_class
        checked = answering_as(client_class, client_class)
        self.client = checked("http://service.test", token, caller="contract-test", transport=WsgiTransport(app))
        self.used: set[str] = set()

    def __getattr__(self, name: str):
        self.used.add(name)
        return getattr(self.client, name)

    def not_called(self) -> set[str]:
        """The client's own calls (not the base class's plumbing) this test has not made."""
        import inspect

        from kit.clients import ServiceClient

        offered = {name for name, _ in inspect.getmembers(self.client_class, inspect.isfunction)
                   if not name.startswith("_") and not hasattr(ServiceClient, name)}
        return offered - self.used


@contextmanager
def database_kept():
    """As Django's test client does: the test's transaction survives the end of an in-process request."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
