"""Time to build a model report PDF: cold (gathered, compared, rendered, stored) and warm (reused)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.platform import Platform  # noqa: E402


def main() -> None:
    platform = Platform(workdir=Path(tempfile.mkdtemp(prefix="bench-report-")))
    try:
        platform.start()
        production = platform.ensure_production_model()
        gateway = platform.url("gateway")
        token = requests.post(f"{gateway}/api/auth/token",
                              json={"username": "engineer", "password": platform.demo_password}, timeout=10).json()["token"]
        headers = {"Authorization": f"Token {token}"}
        # A second version, so the report carries a comparison with production.
        run = requests.post(f"{gateway}/api/scenarios/train-model", headers=headers, timeout=10, json={
            "dataset_id": production["datasets"][0], "hyperparameters": {"epochs": 2}}).json()
        while run["status"] not in ("succeeded", "failed"):
            time.sleep(0.5)
            run = requests.get(f"{gateway}/api/runs/{run['id']}", headers=headers, timeout=10).json()
        version_id = run["result"]["model_version_id"]
        cold, warm = [], []
        for note in ("first", "second", "third"):  # a new note = new inputs = a cold build
            requests.patch(f"{gateway}/api/models/{version_id}", json={"note": note}, headers=headers, timeout=10)
            started = time.perf_counter()
            pdf = requests.get(f"{gateway}/api/models/{version_id}/report.pdf", headers=headers, timeout=60)
            cold.append(time.perf_counter() - started)
            for _ in range(5):
                started = time.perf_counter()
                requests.get(f"{gateway}/api/models/{version_id}/report.pdf", headers=headers, timeout=60)
                warm.append(time.perf_counter() - started)
        print(f"report PDF of v{version_id} ({len(pdf.content):,} bytes, with a comparison against v{production['id']}): "
              f"cold median {statistics.median(cold) * 1000:.0f} ms (runs: {', '.join(f'{c * 1000:.0f}' for c in cold)}), "
              f"warm median {statistics.median(warm) * 1000:.0f} ms")
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
