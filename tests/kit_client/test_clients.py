"""The kit's peer client: what it retries and what it does not."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kit.clients import ServiceClient
from kit.errors import PeerUnavailable


class Peer(BaseHTTPRequestHandler):
    """Answers after `delay` seconds with `status`; counts the requests it was sent."""

    delay, status, seen = 0.0, 200, 0

    def do_GET(self):  # noqa: N802 - the handler's protocol
        type(self).seen += 1
        time.sleep(self.delay)
        body = b'{"error": {"code": "internal_error", "message": "x"}}' if self.status >= 500 else b"{}"
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def peer():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Peer)
    Peer.delay, Peer.status, Peer.seen = 0.0, 200, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ServiceClient(f"http://127.0.0.1:{server.server_port}", "token", timeout=0.3)
    server.shutdown()
    server.server_close()


def test_a_call_that_timed_out_reading_is_not_sent_again(peer):
    Peer.delay = 1.0
    with pytest.raises(PeerUnavailable, match="no answer within 0.3 s"):
        peer.get_json("/work")
    time.sleep(1.2)
    assert Peer.seen == 1, "the peer may still be doing the work: it was asked once"


def test_an_idempotent_call_that_failed_with_a_500_is_tried_once_more(peer):
    Peer.status = 500
    with pytest.raises(PeerUnavailable, match="it answered 500"):
        peer.get_json("/work")
    assert Peer.seen == 2


def test_a_refused_connection_names_the_peer():
    client = ServiceClient("http://127.0.0.1:9", "token", timeout=0.3)
    client.service = "storage_svc"
    with pytest.raises(PeerUnavailable, match="storage_svc is unavailable: connection refused or reset"):
        client.get_json("/runs")
