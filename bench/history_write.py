"""What recording predictions costs storage_svc: `POST /predictions/bulk` through its WSGI app, in-process.

    .venv/bin/python bench/history_write.py [--database postgres://postgres@127.0.0.1:5432/bench_history]

The gateway's history batcher sends the answered predictions of a batch in one call, each with a request key; this
times that call (the storage process's CPU and its PostgreSQL round trips, no network) at batch sizes 1, 8 and 32,
and prints µs per call and per row with the CPU. The database is created afresh (and dropped at the end).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/bench_history")
    parser.add_argument("--seconds", type=float, default=5.0, help="time per batch size")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "storage_svc")]
    os.environ.update({"DATABASE_URL": args.database, "DJANGO_SETTINGS_MODULE": "storage_svc.settings",
                       "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + uuid.uuid4().hex),
                       "SERVICE_TOKEN": os.environ.get("SERVICE_TOKEN", "bench-" + uuid.uuid4().hex)})
    import django
    from django.conf import settings
    from django.db import connection

    from bench import cpu
    from kit.wsgitest import call

    django.setup()
    from storage_svc.wsgi import application

    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)  # migrated, dropped at the end
    try:
        headers = {"X-Service-Token": settings.SERVICE_TOKEN}
        blob = call(application, "PUT", "/blobs", b"weights", headers=headers, content_type="application/octet-stream")
        version = call(application, "POST", "/models", {"architecture": "cnn", "weights_sha256": blob.json()["sha256"],
                                                        "created_by": "bench"}, headers=headers).json()
        image = base64.b64encode(bytes(range(28)) * 28).decode()
        print(f"CPU: {cpu.describe()}")
        print("| rows per call | calls | µs per call | µs per row |\n|---|---|---|---|")
        for size in (1, 8, 32):
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < args.seconds:
                rows = [{"image_b64": image, "digit": 3, "probabilities": [0.01] * 3 + [0.91] + [0.01] * 6,
                         "model_version_id": version["id"], "latency_ms": 1.2, "user": "viewer",
                         "request_key": uuid.uuid4().hex} for _ in range(size)]
                answer = call(application, "POST", "/predictions/bulk", {"predictions": rows}, headers=headers)
                assert answer.status == 201, answer.body
                calls += 1
            per_call = (time.perf_counter() - started) / calls * 1e6
            print(f"| {size} | {calls:,} | {per_call:,.0f} | {per_call / size:,.0f} |", flush=True)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
