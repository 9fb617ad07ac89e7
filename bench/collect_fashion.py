"""Collect-and-store the full Fashion-MNIST train split (60,000 images): time and memory peak per process."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.platform import Platform  # noqa: E402


def peak_rss_mib(pid: int) -> float:
    """The high-water mark of a process and its children that are Python workers (gunicorn forks one)."""
    peaks = []
    for path in [Path(f"/proc/{pid}")] + list(Path("/proc").glob("[0-9]*")):
        try:
            status = (path / "status").read_text()
            if path.name != str(pid) and f"PPid:\t{pid}\n" not in status:
                continue
            peaks.append(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))))
        except (OSError, StopIteration):
            continue
    return max(peaks) / 1024 if peaks else 0.0


def main(batch_size: int = 5000) -> None:
    platform = Platform(workdir=Path(tempfile.mkdtemp(prefix="bench-collect-")))
    try:
        platform.start()
        gateway = platform.url("gateway")
        token = requests.post(f"{gateway}/api/auth/token",
                              json={"username": "engineer", "password": platform.demo_password}, timeout=10).json()["token"]
        headers = {"Authorization": f"Token {token}"}
        started = time.perf_counter()
        run = requests.post(f"{gateway}/api/scenarios/collect-and-store", headers=headers, timeout=30,
                            json={"source": "fashion-mnist", "split": "train", "batch_size": batch_size}).json()
        while run["status"] not in ("succeeded", "failed"):
            time.sleep(0.2)
            run = requests.get(f"{gateway}/api/runs/{run['id']}", headers=headers, timeout=10).json()
        elapsed = time.perf_counter() - started
        assert run["status"] == "succeeded", run["error"]
        print(f"fashion-mnist train: {run['result']['num_samples']} images collected and stored in {elapsed:.2f} s "
              f"(batch size {batch_size}; {run['result']['num_samples'] / elapsed:,.0f} images/s)")
        for name in ("ml_worker", "collector", "storage"):
            print(f"  peak memory {name}: {peak_rss_mib(platform.processes[name].pid):.0f} MiB")
    finally:
        platform.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
