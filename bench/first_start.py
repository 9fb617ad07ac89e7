"""Time from starting the platform (fresh databases) to the first prediction through the gateway."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.platform import Platform  # noqa: E402


def main() -> None:
    platform = Platform(workdir=Path(tempfile.mkdtemp(prefix="bench-first-start-")))
    started = time.perf_counter()
    try:
        platform.start()
        up = time.perf_counter() - started
        platform.manage("ml_svc", "bootstrap_first_model")
        gateway = platform.url("gateway")
        token = requests.post(f"{gateway}/api/auth/token",
                              json={"username": "viewer", "password": platform.demo_password}, timeout=10).json()["token"]
        digit = [[0] * 28 for _ in range(28)]
        for row in range(6, 22):
            digit[row][13] = digit[row][14] = 255  # a "1"
        while True:
            response = requests.post(f"{gateway}/api/predictions", json={"pixels": digit},
                                     headers={"Authorization": f"Token {token}"}, timeout=10)
            if response.status_code == 201:
                break
            time.sleep(0.5)
        total = time.perf_counter() - started
        models = requests.get(f"{gateway}/api/models", headers={"Authorization": f"Token {token}"}, timeout=10).json()
        accuracy = models["results"][0]["metrics"]["accuracy"]
        print(f"services ready after {up:.1f} s; first prediction after {total:.1f} s "
              f"(answer {response.json()['digit']}); first model's held-out accuracy {accuracy:.4f}")
    finally:
        platform.stop()


if __name__ == "__main__":
    main()
