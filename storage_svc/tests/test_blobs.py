import hashlib

import pytest

from storage_svc.registry.blobs import blob_path

pytestmark = pytest.mark.django_db


def test_it_stores_a_blob_under_its_hash_and_returns_it(api, blob_dir):
    response = api.put("/blobs", data=b"hello weights", content_type="application/octet-stream")
    assert response.status_code == 201
    sha = response.json()["sha256"]
    assert sha == hashlib.sha256(b"hello weights").hexdigest()
    assert blob_path(sha).read_bytes() == b"hello weights"
    assert api.get(f"/blobs/{sha}").content == b"hello weights"
    # Written through a temp file and renamed: nothing half-written is left behind.
    assert not [p for p in blob_dir.rglob(".tmp-*")]


def test_it_refuses_to_serve_a_blob_altered_on_disk(api):
    sha = api.put("/blobs", data=b"original", content_type="application/octet-stream").json()["sha256"]
    blob_path(sha).write_bytes(b"tampered")
    response = api.get(f"/blobs/{sha}")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "blob_corrupted"


def test_an_unknown_blob_is_a_404(api):
    response = api.get("/blobs/" + "0" * 64)
    assert response.status_code == 404


def test_an_unreferenced_blob_can_be_deleted_but_a_used_one_cannot(api, model_version):
    orphan = api.put("/blobs", data=b"orphan", content_type="application/octet-stream").json()["sha256"]
    assert api.delete(f"/blobs/{orphan}").json() == {"deleted": True}
    assert not blob_path(orphan).exists()
    used = model_version["weights_sha256"]
    assert api.delete(f"/blobs/{used}").json() == {"deleted": False}
    assert blob_path(used).exists()
