import numpy as np
import pytest

from collector_svc.sources import registry
from kit.digitfiles import idx_file
from tests.support import FileServer


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


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()


@pytest.fixture
def small_idx():
    """A small MNIST-shaped data set as the four official file names, gzip-compressed."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 28, 28)), np.arange(50) % 10
    test = rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10
    return {
        "train-images-idx3-ubyte.gz": idx_file(train[0]), "train-labels-idx1-ubyte.gz": idx_file(train[1]),
        "t10k-images-idx3-ubyte.gz": idx_file(test[0]), "t10k-labels-idx1-ubyte.gz": idx_file(test[1]),
    }
