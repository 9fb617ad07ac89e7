import hashlib

import numpy as np
import pytest

from kit import imagepack


def test_info_describes_mnist_5k_with_counts_and_checksum(api):
    body = api.get("/info?source=mnist-5k").json()
    train = body["splits"]["train"]
    assert train["count"] == 5000
    assert train["class_counts"] == {str(d): 500 for d in range(10)}
    assert len(train["sha256"]) == 64


def test_info_without_a_source_lists_the_sources(api):
    names = [s["source"] for s in api.get("/info").json()["sources"]]
    assert "mnist-5k" in names


def test_batches_cover_the_source_in_a_stable_order(api):
    first = api.get("/batch?source=mnist-5k&size=2000&offset=0")
    again = api.get("/batch?source=mnist-5k&size=2000&offset=0")
    assert first.content == again.content
    assert first["X-Total"] == "5000" and first["X-Next-Offset"] == "2000"
    images, labels = imagepack.unpack(first.content)
    assert images.shape == (2000, 28, 28) and labels.shape == (2000,)
    assert images.max() > 200, "real digits have bright ink"
    last = api.get("/batch?source=mnist-5k&size=2000&offset=4000")
    assert last["X-Next-Offset"] == ""
    assert imagepack.unpack(last.content)[0].shape[0] == 1000


def test_any_prefix_of_mnist_5k_covers_every_class(api):
    _, labels = imagepack.unpack(api.get("/batch?source=mnist-5k&size=500").content)
    counts = np.bincount(labels, minlength=10)
    assert counts.min() >= 30, counts


def test_the_checksum_matches_the_pixels_served(api):
    info = api.get("/info?source=mnist-5k").json()["splits"]["train"]
    images, labels = imagepack.unpack(api.get("/batch?source=mnist-5k&size=5000").content)
    assert hashlib.sha256(imagepack.pack(images, labels)).hexdigest() == info["sha256"]
    assert np.bincount(labels).tolist() == [500] * 10


@pytest.mark.parametrize(
    "query, status, code",
    [
        ("source=mnist-5k&size=0", 400, "out_of_range"),
        ("source=mnist-5k&size=100001", 400, "out_of_range"),
        ("source=mnist-5k&size=10&offset=5000", 400, "out_of_range"),
        ("source=mnist-5k&size=10&offset=-1", 400, "out_of_range"),
        ("source=mnist-5k&size=ten", 400, "invalid"),
        ("source=mnist-5k", 400, "invalid"),
        ("source=nope&size=10", 404, "unknown_source"),
        ("source=mnist-5k&size=10&split=test", 400, "unknown_split"),
    ],
)
def test_bad_batch_requests_are_clear_4xx_errors(api, query, status, code):
    response = api.get(f"/batch?{query}")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_the_collector_requires_the_service_token(client):
    assert client.get("/info?source=mnist-5k").status_code == 401
    assert client.get("/health").json() == {"status": "ok", "service": "collector_svc"}


def test_every_request_gets_a_request_id_and_a_json_log_line(api, settings, caplog):
    response = api.get("/info", HTTP_X_REQUEST_ID="abc123")
    assert response["X-Request-ID"] == "abc123"
    lines = [r for r in caplog.records if r.name == "platform.access"]
    assert lines and lines[-1].fields["request_id"] == "abc123" and lines[-1].fields["status"] == 200
