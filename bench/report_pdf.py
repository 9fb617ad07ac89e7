"""Time to build a model report PDF.

- first: a version's first report, nothing cached anywhere: inputs gathered from storage, the
  comparison with production computed by ml_svc (the version loaded, run on the held-out set),
  HTML and PDF rendered, the PDF stored;
- rebuilt: after the version's note changes (new inputs, so a new PDF; ml_svc remembers the comparison);
- warm: the stored PDF served again;
- production moved: another version promoted, so the report's comparison is computed by ml_svc on demand.
"""

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

VERSIONS = 3


def timed(url: str, headers: dict) -> tuple[float, bytes]:
    started = time.perf_counter()
    response = requests.get(url, headers=headers, timeout=60)
    response.raise_for_status()
    return time.perf_counter() - started, response.content


def main() -> None:
    platform = Platform(workdir=Path(tempfile.mkdtemp(prefix="bench-report-")))
    try:
        platform.start()
        production = platform.ensure_production_model()
        gateway = platform.url("gateway")
        token = requests.post(f"{gateway}/api/auth/token",
                              json={"username": "engineer", "password": platform.demo_password}, timeout=10).json()["token"]
        headers = {"Authorization": f"Token {token}"}
        first, rebuilt, warm, fresh = [], [], [], []
        for _ in range(VERSIONS):  # fresh versions, each compared with production in its report
            run = requests.post(f"{gateway}/api/scenarios/train-model", headers=headers, timeout=10, json={
                "dataset_id": production["datasets"][0], "hyperparameters": {"epochs": 2}}).json()
            while run["status"] not in ("succeeded", "failed"):
                time.sleep(0.5)
                run = requests.get(f"{gateway}/api/runs/{run['id']}", headers=headers, timeout=10).json()
            version_id = run["result"]["model_version_id"]
            fresh.append(version_id)
            first.append(timed(f"{gateway}/api/models/{version_id}/report.pdf", headers)[0])
            for note in ("first note", "second note"):  # a new note = new inputs = the PDF rendered again
                requests.patch(f"{gateway}/api/models/{version_id}", json={"note": note}, headers=headers, timeout=10)
                rebuilt.append(timed(f"{gateway}/api/models/{version_id}/report.pdf", headers)[0])
                for _ in range(5):
                    seconds, pdf = timed(f"{gateway}/api/models/{version_id}/report.pdf", headers)
                    warm.append(seconds)
        # Production moves: the other versions' stored comparisons are now against a former production,
        # so their next report asks ml_svc to compare (once per pair).
        admin = requests.post(f"{gateway}/api/auth/token", json={"username": "admin", "password": platform.demo_password},
                              timeout=10).json()["token"]
        requests.post(f"{gateway}/api/models/{version_id}/promote", json={"reason": "bench", "override": True},
                      headers={"Authorization": f"Token {admin}"}, timeout=10).raise_for_status()
        time.sleep(1.0)
        moved = [timed(f"{gateway}/api/models/{other}/report.pdf", headers)[0] for other in fresh[:-1]]
        print(f"report PDF ({len(pdf):,} bytes, 4 A4 pages, with a comparison against v{production['id']}), "
              f"{VERSIONS} fresh versions:")
        for name, values in (("first build", first), ("rebuilt after a note", rebuilt), ("warm (stored)", warm),
                             ("production moved", moved)):
            print(f"  {name:<22} median {statistics.median(values) * 1000:5.0f} ms  max {max(values) * 1000:5.0f} ms  "
                  f"(runs: {', '.join(f'{v * 1000:.0f}' for v in values[:8])}{', ...' if len(values) > 8 else ''})")
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
