import gzip
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from sources import registry


@pytest.fixture
def api(client, settings):
    client.defaults["HTTP_X_SERVICE_TOKEN"] = settings.SERVICE_TOKEN
    return client


@pytest.fixture(autouse=True)
def fresh_sources(settings, tmp_path):
    """Every test sees sources as if the collector had just started, with its own download cache."""
    settings.DOWNLOAD_CACHE_DIR = tmp_path / "cache"
    registry._instances.clear()
    yield
    registry._instances.clear()


class FileServer:
    """A loopback HTTP server for download tests: serves `files`, or stalls, or is gone."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.stall_s = 0.0
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                server.requests.append(self.path)
                if server.stall_s:
                    time.sleep(server.stall_s)
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture
def small_idx():
    """A small MNIST-shaped data set as the four official file names, gzip-compressed."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 28, 28)), np.arange(50) % 10
    test = rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10
    return {
        "train-images-idx3-ubyte.gz": idx_gz(train[0]), "train-labels-idx1-ubyte.gz": idx_gz(train[1]),
        "t10k-images-idx3-ubyte.gz": idx_gz(test[0]), "t10k-labels-idx1-ubyte.gz": idx_gz(test[1]),
    }
