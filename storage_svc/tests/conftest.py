import os
import uuid
from pathlib import Path

import pytest
from django.db import connection

from kit import imagepack
from storage_svc.registry import blobs, drift
from tests.support import make_pack


@pytest.fixture(autouse=True, scope="session")
def _real_postgresql(django_db_setup, django_db_blocker):
    """Storage is tested against PostgreSQL, never only SQLite."""
    with django_db_blocker.unblock():
        if connection.vendor != "postgresql":
            pytest.exit("storage tests need PostgreSQL: run `make test` or set DATABASE_URL", returncode=2)


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto's server mode) on loopback, and credentials for it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved = {key: os.environ.get(key) for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID="test-key", AWS_SECRET_ACCESS_KEY="test-secret")
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class StoredBlobs:
    """What the configured blob store holds, read around storage_svc (to check it, or to damage it)."""

    def __init__(self, backend: str, root: Path):
        self.backend, self.root = backend, root

    def raw(self, sha256: str) -> bytes | None:
        return blobs.store().get(sha256)

    def exists(self, sha256: str) -> bool:
        return blobs.store().get(sha256) is not None

    def remove(self, sha256: str) -> None:
        """The bytes lost behind storage_svc's back (the row stays)."""
        blobs.store().delete(sha256)

    def tamper(self, sha256: str, data: bytes) -> None:
        store = blobs.store()
        if self.backend == "s3":
            store.client.put_object(Bucket=store.bucket, Key=blobs.key_of(sha256), Body=data)
        else:
            store.path(sha256).write_bytes(data)

    def keys(self) -> list[str]:
        """Every stored object or file, half-written ones included."""
        store = blobs.store()
        if self.backend == "s3":
            listed = store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])
            return [item["Key"] for item in listed]
        return [str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()]


@pytest.fixture(autouse=True, params=["local", "s3"])
def stored_blobs(request, settings, tmp_path):
    """Every storage test runs on both blob stores: files, and an S3 bucket of its own."""
    settings.BLOB_DIR = tmp_path / "blobs"
    settings.BLOB_BACKEND = request.param
    if request.param == "s3":
        settings.S3_ENDPOINT_URL = request.getfixturevalue("s3_server")
        settings.S3_BUCKET = f"test-{uuid.uuid4().hex[:16]}"
        blobs.store().client.create_bucket(Bucket=settings.S3_BUCKET)
    yield StoredBlobs(request.param, settings.BLOB_DIR)
    blobs._s3.cache_clear()  # no client (and its connection) kept per test's bucket


@pytest.fixture(autouse=True)
def _no_remembered_drift():
    """Production's drift is remembered for a minute per process: each test starts without another's."""
    drift._today[:] = [float("-inf"), None]


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
