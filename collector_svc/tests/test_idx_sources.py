import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from collector_svc.sources import registry
from collector_svc.sources.idx_sources import IdxFile, MnistSource
from kit import imagepack
from tests.support import md5

SHARED_T10K = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "mnist-t10k"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def mnist_offline(settings):
    settings.MNIST_MIRRORS = ""
    return settings


@pytest.fixture
def small_mnist(monkeypatch, small_idx):
    """The `mnist` source expecting the small data set's checksums instead of the official ones."""
    files = {
        "train": (IdxFile("train-images-idx3-ubyte.gz", md5(small_idx["train-images-idx3-ubyte.gz"])),
                  IdxFile("train-labels-idx1-ubyte.gz", md5(small_idx["train-labels-idx1-ubyte.gz"]))),
        "test": (IdxFile("t10k-images-idx3-ubyte.gz", md5(small_idx["t10k-images-idx3-ubyte.gz"])),
                 IdxFile("t10k-labels-idx1-ubyte.gz", md5(small_idx["t10k-labels-idx1-ubyte.gz"]))),
    }
    monkeypatch.setattr(MnistSource, "files", files)
    return small_idx


def test_mnist_reads_a_local_directory_of_official_idx_files(api, mnist_offline):
    assert SHARED_T10K.is_dir(), "the official MNIST test set is expected in ../shared/datasets/mnist-t10k"
    mnist_offline.MNIST_DIR = str(SHARED_T10K)
    listing = {s["source"]: s for s in api.get("/info").json()["sources"]}
    assert listing["mnist"]["splits"] == ["test"], "only the split whose files are present, when nothing is downloadable"
    test = api.get("/info?source=mnist").json()["splits"]["test"]
    assert test["count"] == 10000 and sum(test["class_counts"].values()) == 10000 and test["class_counts"]["1"] == 1135
    images, labels = imagepack.unpack(api.get("/batch?source=mnist&split=test&size=100&offset=9950").content)
    assert images.shape == (50, 28, 28) and labels.shape == (50,)


def test_a_local_file_that_differs_from_the_official_one_is_refused(api, mnist_offline, tmp_path):
    local = tmp_path / "mnist"
    shutil.copytree(SHARED_T10K, local)
    import gzip

    content = bytearray(gzip.decompress((local / "t10k-images-idx3-ubyte.gz").read_bytes()))
    content[5000] ^= 0xFF
    (local / "t10k-images-idx3-ubyte.gz").unlink()
    (local / "t10k-images-idx3-ubyte").write_bytes(bytes(content))
    mnist_offline.MNIST_DIR = str(local)
    response = api.get("/batch?source=mnist&split=test&size=10")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "checksum_mismatch"


def test_fashion_mnist_comes_from_debians_package(api):
    assert DEBIAN_FASHION.is_dir(), "Debian's dataset-fashion-mnist is needed (make test installs it)"
    splits = api.get("/info?source=fashion-mnist").json()["splits"]
    assert splits["train"]["count"] == 60000 and splits["test"]["count"] == 10000
    assert set(splits["train"]["class_counts"].values()) == {6000}


def test_a_download_is_verified_cached_and_served(api, settings, small_mnist, file_server):
    file_server.files.update(small_mnist)
    settings.MNIST_DIR, settings.MNIST_MIRRORS = "", file_server.url
    info = api.get("/info?source=mnist").json()["splits"]
    assert info["train"]["count"] == 50 and info["test"]["count"] == 20
    cached = sorted(p.name for p in (settings.DOWNLOAD_CACHE_DIR / "mnist").iterdir())
    assert cached == sorted(small_mnist)
    served = len(file_server.requests)
    registry._instances.clear()  # as a restarted collector
    file_server.files.clear()  # the mirror is gone: the verified cache still serves
    assert api.get("/batch?source=mnist&split=train&size=50").status_code == 200
    assert len(file_server.requests) == served


def test_a_corrupted_download_is_a_clear_error_and_leaves_nothing_behind(api, settings, small_mnist, file_server):
    file_server.files.update(small_mnist)
    file_server.files["train-images-idx3-ubyte.gz"] = small_mnist["train-images-idx3-ubyte.gz"][:-7] + b"garbage"
    settings.MNIST_DIR, settings.MNIST_MIRRORS = "", file_server.url
    response = api.get("/batch?source=mnist&split=train&size=10")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "download_failed" and "checksum mismatch" in error["message"]
    cache = settings.DOWNLOAD_CACHE_DIR / "mnist"
    assert not (cache / "train-images-idx3-ubyte.gz").exists()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")], "no half-written temp files"


def test_the_next_mirror_is_tried_when_one_serves_bad_bytes(api, settings, small_mnist, file_server):
    from tests.support import FileServer

    bad = FileServer()
    try:
        bad.files.update({name: b"wrong" for name in small_mnist})
        file_server.files.update(small_mnist)
        settings.MNIST_DIR, settings.MNIST_MIRRORS = "", f"{bad.url},{file_server.url}"
        assert api.get("/batch?source=mnist&split=test&size=5").status_code == 200
        assert bad.requests and file_server.requests
    finally:
        bad.close()


def test_a_mirror_that_is_down_is_a_clear_error(api, settings, small_mnist, file_server):
    url = file_server.url
    file_server.close()
    settings.MNIST_DIR, settings.MNIST_MIRRORS = "", url
    response = api.get("/batch?source=mnist&split=test&size=5")
    assert response.status_code == 502
    assert "ConnectionError" in response.json()["error"]["message"]


def test_a_mirror_that_stalls_times_out(api, settings, small_mnist, file_server):
    file_server.files.update(small_mnist)
    file_server.stall_s = 3.0
    settings.MNIST_DIR, settings.MNIST_MIRRORS, settings.DOWNLOAD_TIMEOUT_S = "", file_server.url, 0.5
    started = time.monotonic()
    response = api.get("/batch?source=mnist&split=test&size=5")
    assert response.status_code == 502 and time.monotonic() - started < 2.5
    assert "no answer within 0.5 s" in response.json()["error"]["message"]


def test_no_mirrors_and_no_local_files_means_no_splits_not_a_guess(api, settings):
    settings.MNIST_DIR, settings.MNIST_MIRRORS = "", ""
    listing = {s["source"]: s for s in api.get("/info").json()["sources"]}
    assert listing["mnist"]["splits"] == []
    response = api.get("/batch?source=mnist&split=train&size=5")
    assert response.status_code == 400 and "(none available)" in response.json()["error"]["message"]


def test_the_user_source_serves_accepted_samples_from_storage(api, monkeypatch):
    from collector_svc.sources import user

    class Storage:
        def accepted_samples(self):
            return np.full((3, 28, 28), 200, np.uint8), np.array([4, 4, 2], np.uint8)

    monkeypatch.setattr(user, "storage", lambda: Storage())
    info = api.get("/info?source=user").json()["splits"]["train"]
    assert info["count"] == 3 and info["class_counts"]["4"] == 2


def test_the_request_log_records_who_asked_what_and_how_much_came_back(api, settings, tmp_path):
    api.get("/batch?source=mnist-5k&size=300&offset=100", HTTP_X_CALLER="ml_svc")
    entries = api.get("/log?limit=5").json()["entries"]
    assert entries[0]["path"] == "/batch" and entries[0]["rows"] == 300 and entries[0]["caller"] == "ml_svc"
    assert entries[0]["query"] == "source=mnist-5k&size=300&offset=100" and entries[0]["bytes"] > 300 * 784
    assert {"time", "request_id", "status", "latency_ms"} <= set(entries[0])
    assert api.get("/log?limit=0").status_code == 400
