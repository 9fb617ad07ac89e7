import pytest
from django.db import connection

from kit import imagepack
from tests.support import make_pack


@pytest.fixture(autouse=True, scope="session")
def _real_postgresql(django_db_setup, django_db_blocker):
    """Storage is tested against PostgreSQL, never only SQLite."""
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.exit("storage tests need PostgreSQL: run `make test` or set DATABASE_URL", returncode=2)


@pytest.fixture(autouse=True)
def blob_dir(settings, tmp_path):
    settings.BLOB_DIR = tmp_path / "blobs"
    return settings.BLOB_DIR


@pytest.fixture
def api(client, settings):
    """A test client that sends the service token, as every peer service does."""
    client.defaults["HTTP_X_SERVICE_TOKEN"] = settings.SERVICE_TOKEN
    return client


@pytest.fixture
def dataset(api):
    response = api.post(
        "/datasets?name=digits&source=mnist-5k&split=train&created_by=alice",
        data=make_pack(),
        content_type=imagepack.CONTENT_TYPE,
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def model_version(api, dataset):
    blob = api.put("/blobs", data=b"weights-bytes", content_type="application/octet-stream").json()
    response = api.post(
        "/models",
        {"architecture": "cnn", "dataset_ids": [dataset["id"]], "weights_sha256": blob["sha256"],
         "metrics": {"accuracy": 0.9}, "created_by": "alice"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def record_prediction(api):
    """Records one answered prediction as the gateway does (`POST /predictions/bulk`) and returns the stored row."""
    def record(**row) -> dict:
        answer = api.post("/predictions/bulk", {"predictions": [row]}, content_type="application/json")
        assert answer.status_code == 201, answer.content
        return api.get(f"/predictions/{answer.json()['ids'][0]}").json()
    return record


@pytest.fixture(autouse=True)
def expiry_checked_on_every_read(monkeypatch):
    """Tests move time and read at once: each read checks for stale runs (in service, at most once a second)."""
    from storage_svc.registry import services

    monkeypatch.setattr(services, "EXPIRY_EVERY_S", 0.0)
