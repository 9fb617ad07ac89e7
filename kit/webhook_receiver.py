"""A webhook receiver for tests: HTTPS on loopback with a self-signed certificate, recording every delivery, answering
with a planned sequence of statuses, or hanging."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, made with openssl; the certificate is also the CA file to trust."""
    cert, key = folder / "receiver.crt", folder / "receiver.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """`statuses`: what the first deliveries are answered, in order (then 200); `hang_s`: how long each waits first;
    `drip_s`: answer one byte at a time, this long apart (each read is quick, the whole answer is not)."""

    folder: Path
    statuses: list[int] = field(default_factory=list)
    hang_s: float = 0.0
    drip_s: float = 0.0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self):
        self.cert, key = self_signed_certificate(self.folder)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 -- the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(Received(self.path, dict(self.headers.items()), body, time.time()))
                if receiver.hang_s:
                    time.sleep(receiver.hang_s)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.drip_s:
                    for byte in f"HTTP/1.1 {status} OK\r\nContent-Length: 0\r\n\r\n".encode():
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(receiver.drip_s)
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
