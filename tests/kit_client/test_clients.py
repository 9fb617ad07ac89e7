"""The kit's peer client: what it retries and what it does not, and how a peer's answer becomes an error."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kit.clients import ServiceClient
from kit.errors import AppError, PeerUnavailable
from kit.requestlog import request_id_bound


class Peer(BaseHTTPRequestHandler):
    """Answers after `delay` seconds with `status`; counts the requests it was sent."""

    delay, status, seen, body, headers = 0.0, 200, 0, None, None

    def do_GET(self):  # noqa: N802 - the handler's protocol
        type(self).seen += 1
        type(self).headers_seen = dict(self.headers)
        time.sleep(self.delay)
        body = self.body if self.body is not None else (
            b'{"error": {"code": "internal_error", "message": "x"}}' if self.status >= 500 else b"{}")
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def peer():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Peer)
    Peer.delay, Peer.status, Peer.seen, Peer.body = 0.0, 200, 0, None
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


def test_a_peers_json_error_is_passed_on_with_its_code_status_and_details(peer):
    Peer.status = 409
    Peer.body = b'{"error": {"code": "run_finished", "message": "run 3 already ended", "details": {"run": 3}}}'
    with pytest.raises(AppError) as refused:
        peer.get_json("/runs/3")
    error = refused.value
    assert (error.code, error.message, error.status, error.details) == ("run_finished", "run 3 already ended", 409, {"run": 3})
    assert not isinstance(error, PeerUnavailable) and Peer.seen == 1, "a 4xx is final"


def test_a_4xx_that_is_not_the_platforms_json_still_names_the_peer(peer):
    peer.service = "collector_svc"
    Peer.status, Peer.body = 404, b"<html>not found</html>"
    with pytest.raises(AppError) as refused:
        peer.get_json("/nowhere")
    assert (refused.value.code, refused.value.message, refused.value.status) == ("peer_error", "collector_svc answered 404", 404)


def test_a_5xx_the_peer_explains_is_its_answer_not_an_outage(peer):
    Peer.status, Peer.body = 502, b'{"error": {"code": "download_failed", "message": "every mirror failed"}}'
    with pytest.raises(AppError) as refused:
        peer.get_json("/batch")
    assert not isinstance(refused.value, PeerUnavailable)
    assert (refused.value.code, refused.value.status, Peer.seen) == ("download_failed", 502, 1)


def test_a_post_that_failed_with_a_500_is_not_sent_again(peer):
    Peer.status = 500
    with pytest.raises(PeerUnavailable, match="it answered 500"):
        peer.post_json("/runs", {"kind": "train"})
    assert Peer.seen == 1, "a POST may have done its work: it is not repeated"


def test_every_call_carries_the_service_token_the_caller_and_the_request_id(peer):
    peer.caller = "gateway_site"
    with request_id_bound("abc123"):
        peer.get_json("/runs")
    sent = {name.lower(): value for name, value in Peer.headers_seen.items()}
    assert (sent["x-service-token"], sent["x-caller"], sent["x-request-id"]) == ("token", "gateway_site", "abc123")
