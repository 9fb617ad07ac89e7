"""Content-addressed blobs (`sha256/ab/cdef…`) in one of two stores, chosen by `blob_backend`:

- `local`: files under `blob_dir`, written to a temp file, fsynced and renamed (the local run's default);
- `s3`: objects in an S3-compatible bucket (MinIO, AWS, moto), so several storage replicas share them. A PUT is
  visible only once it is complete, as the rename is on disk.

Either way a blob is written under its hash (a no-op if present) and its bytes are checked against the hash on
every read.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings

from kit.errors import AppError

logger = logging.getLogger(__name__)


class BlobCorrupted(AppError):
    def __init__(self, sha256: str):
        super().__init__(
            "blob_corrupted",
            f"blob {sha256} does not match its hash in the blob store",
            status=500,
            details={"sha256": sha256},
        )


class BlobMissing(AppError):
    def __init__(self, sha256: str):
        super().__init__("blob_missing", f"blob {sha256} is recorded but its bytes are not in the blob store",
                         status=500, details={"sha256": sha256})


class BlobStoreUnavailable(AppError):
    def __init__(self, why: str):
        super().__init__("blob_store_unavailable", f"The blob store cannot be reached: {why}", status=503)


class BlobStoreMisconfigured(AppError):
    def __init__(self, why: str):
        super().__init__("blob_store_misconfigured", f"The blob store refuses storage_svc: {why} (check the bucket, "
                         "endpoint and credentials)", status=500)


def key_of(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256[2:]}"


class LocalBlobs:
    """Blobs as files under `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / key_of(sha256)

    def put(self, sha256: str, data: bytes) -> None:
        path = self.path(sha256)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, sha256: str) -> bytes | None:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)


class S3Blobs:
    """Blobs as objects of an S3-compatible bucket; credentials come from the environment (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY), as boto3 reads them."""

    def __init__(self, *, bucket: str, endpoint_url: str, region: str, timeout_s: float):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None,
            # One attempt, each of connect and read bounded: an unreachable store answers 503 within about twice
            # timeout_s, not after retries that would hold a storage worker.
            config=Config(connect_timeout=timeout_s, read_timeout=timeout_s,
                          retries={"total_max_attempts": 1, "mode": "standard"}, s3={"addressing_style": "path"}))

    def _call(self, method: str, read=lambda answer: answer, **kwargs):
        """The client's `method` on this bucket, `read` from its answer (a body is read here too); a missing key
        is None, a store out of reach a 503, a store that refuses (credentials, bucket) a 500."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            IncompleteReadError,
            ResponseStreamingError,
        )

        try:
            return read(getattr(self.client, method)(Bucket=self.bucket, **kwargs))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            if code in {"NoSuchKey", "404", "NotFound"}:
                return None
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            logger.warning("blob store %s failed: %s", method, error)
            if status >= 500 or code in {"SlowDown", "RequestTimeout", "ServiceUnavailable"}:
                raise BlobStoreUnavailable(f"{method}: {code}") from error
            raise BlobStoreMisconfigured(f"{method}: {code}") from error
        except (ConnectionError, HTTPClientError, IncompleteReadError, ResponseStreamingError) as error:
            logger.warning("blob store %s failed: %s", method, error)
            raise BlobStoreUnavailable(f"{method}: {type(error).__name__}") from error
        except BotoCoreError as error:  # the others: no credentials, a bad parameter, a checksum
            logger.warning("blob store %s failed: %s", method, error)
            raise BlobStoreMisconfigured(f"{method}: {type(error).__name__}") from error

    def put(self, sha256: str, data: bytes) -> None:
        # Content-addressed: writing the same key again writes the same bytes, so no look first (which a policy
        # without s3:ListBucket would answer 403).
        self._call("put_object", Key=key_of(sha256), Body=data,
                   ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode())

    def get(self, sha256: str) -> bytes | None:
        return self._call("get_object", read=lambda answer: answer["Body"].read(), Key=key_of(sha256))

    def delete(self, sha256: str) -> None:
        self._call("delete_object", Key=key_of(sha256))


@functools.cache
def _s3(bucket: str, endpoint_url: str, region: str, timeout_s: float) -> S3Blobs:
    return S3Blobs(bucket=bucket, endpoint_url=endpoint_url, region=region, timeout_s=timeout_s)


def store() -> LocalBlobs | S3Blobs:
    """The blob store the settings name (read on each call, so tests can switch it)."""
    if settings.BLOB_BACKEND == "s3":
        return _s3(settings.S3_BUCKET, settings.S3_ENDPOINT_URL, settings.S3_REGION, settings.S3_TIMEOUT_S)
    return LocalBlobs(settings.BLOB_DIR)


def write_blob_file(data: bytes) -> str:
    """Store `data` under its SHA-256 (visible only once complete; a no-op if present) and return the hash."""
    sha256 = hashlib.sha256(data).hexdigest()
    store().put(sha256, data)
    return sha256


def read_blob_file(sha256: str) -> bytes:
    """The blob's bytes, verified against its hash."""
    data = store().get(sha256)
    if data is None:
        raise BlobMissing(sha256)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BlobCorrupted(sha256)
    return data


def delete_blob_file(sha256: str) -> None:
    store().delete(sha256)
