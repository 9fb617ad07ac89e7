"""Call a WSGI application in-process, for tests of kit.hotpath routes (Django's test client skips them)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass


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
