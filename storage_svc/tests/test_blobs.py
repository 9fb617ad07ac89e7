import hashlib
import socket

import pytest

from storage_svc.registry import blobs

pytestmark = pytest.mark.django_db


def test_it_stores_a_blob_under_its_hash_and_returns_it(api, stored_blobs):
    response = api.put("/blobs", data=b"hello weights", content_type="application/octet-stream")
    assert response.status_code == 201
    sha = response.json()["sha256"]
    assert sha == hashlib.sha256(b"hello weights").hexdigest()
    assert stored_blobs.raw(sha) == b"hello weights"
    assert api.get(f"/blobs/{sha}").content == b"hello weights"
    # Stored whole under its hash (a file through a temp file and a rename): nothing half-written is left behind.
    assert stored_blobs.keys() == [f"sha256/{sha[:2]}/{sha[2:]}"]


def test_it_refuses_to_serve_a_blob_altered_in_the_store(api, stored_blobs):
    sha = api.put("/blobs", data=b"original", content_type="application/octet-stream").json()["sha256"]
    stored_blobs.tamper(sha, b"tampered")
    response = api.get(f"/blobs/{sha}")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "blob_corrupted"


def test_an_unknown_blob_is_a_404(api):
    response = api.get("/blobs/" + "0" * 64)
    assert response.status_code == 404


def test_an_unreferenced_blob_can_be_deleted_but_a_used_one_cannot(api, model_version, stored_blobs):
    orphan = api.put("/blobs", data=b"orphan", content_type="application/octet-stream").json()["sha256"]
    assert api.delete(f"/blobs/{orphan}").json() == {"deleted": True}
    assert not stored_blobs.exists(orphan)
    used = model_version["weights_sha256"]
    assert api.delete(f"/blobs/{used}").json() == {"deleted": False}
    assert stored_blobs.exists(used)


def test_a_blob_written_through_one_replica_is_read_through_another(api, settings, stored_blobs, tmp_path):
    """Two storage replicas share the database; with the S3 store they share the blobs too. With local files the
    second replica (its own disk) has the row but not the bytes, and says so: a 500 naming the blob."""
    sha = api.put("/blobs", data=b"shared weights", content_type="application/octet-stream").json()["sha256"]
    settings.BLOB_DIR = tmp_path / "another-replica"
    blobs._s3.cache_clear()  # the other replica's own client
    answer = api.get(f"/blobs/{sha}")
    if stored_blobs.backend == "s3":
        assert answer.status_code == 200 and answer.content == b"shared weights"
    else:
        assert answer.status_code == 500 and answer.json()["error"]["code"] == "blob_missing"


def test_an_unreachable_object_store_is_a_clear_503(api, settings, stored_blobs):
    sha = api.put("/blobs", data=b"weights", content_type="application/octet-stream").json()["sha256"]
    if stored_blobs.backend != "s3":
        pytest.skip("only the S3 store can be unreachable")
    settings.S3_ENDPOINT_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.S3_TIMEOUT_S = 1.0
    for answer in (api.get(f"/blobs/{sha}"), api.put("/blobs", data=b"more", content_type="application/octet-stream")):
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "blob_store_unavailable"


def test_a_recorded_blob_whose_bytes_are_gone_is_a_clear_500(api, stored_blobs):
    sha = api.put("/blobs", data=b"soon lost", content_type="application/octet-stream").json()["sha256"]
    stored_blobs.remove(sha)
    answer = api.get(f"/blobs/{sha}")
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "blob_missing"


def test_a_store_that_refuses_storage_is_a_500_naming_the_configuration(api, settings, stored_blobs):
    if stored_blobs.backend != "s3":
        pytest.skip("only the S3 store has a bucket to get wrong")
    settings.S3_BUCKET = "no-such-bucket-here"
    answer = api.put("/blobs", data=b"weights", content_type="application/octet-stream")
    assert answer.status_code == 500 and answer.json()["error"]["code"] == "blob_store_misconfigured"
    assert "bucket" in answer.json()["error"]["message"]


def test_a_blob_stays_recorded_when_the_store_cannot_delete_it(api, settings, stored_blobs):
    if stored_blobs.backend != "s3":
        pytest.skip("only the S3 store can be unreachable")
    orphan = api.put("/blobs", data=b"orphan", content_type="application/octet-stream").json()["sha256"]
    endpoint = settings.S3_ENDPOINT_URL
    settings.S3_ENDPOINT_URL, settings.S3_TIMEOUT_S = "http://127.0.0.1:9", 1.0
    assert api.delete(f"/blobs/{orphan}").status_code == 503
    settings.S3_ENDPOINT_URL = endpoint
    assert api.get(f"/blobs/{orphan}").content == b"orphan", "nothing was lost: ask again"
    assert api.delete(f"/blobs/{orphan}").json() == {"deleted": True}
    assert not stored_blobs.exists(orphan)


def test_an_object_store_that_never_answers_is_a_503_within_its_timeout(api, settings, stored_blobs):
    """A store that accepts the connection and then says nothing (overloaded, a black hole) holds a storage worker
    no longer than one attempt's read timeout."""
    if stored_blobs.backend != "s3":
        pytest.skip("only the S3 store is a peer")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings.S3_ENDPOINT_URL = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings.S3_TIMEOUT_S = 0.5
        answer = api.put("/blobs", data=b"weights", content_type="application/octet-stream")
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "blob_store_unavailable"
        silent.settimeout(0.2)
        silent.accept()[0].close()  # the one attempt's connection, waiting in the backlog
        with pytest.raises(TimeoutError):
            silent.accept()  # no second attempt
