"""`make run`: prepare the embedded local platform and start every service with honcho.

Secrets are generated per checkout into var/local.env (never committed); demo accounts
get $DEMO_PASSWORD or a generated password, printed once.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
ENV_FILE = ROOT / "var" / "local.env"


def local_env() -> dict[str, str]:
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    if not ENV_FILE.exists():
        ENV_FILE.write_text(
            f"SECRET_KEY={secrets.token_urlsafe(40)}\nSERVICE_TOKEN={secrets.token_urlsafe(32)}\n"
        )
        ENV_FILE.chmod(0o600)
    env = dict(os.environ)
    for line in ENV_FILE.read_text().splitlines():
        key, _, value = line.partition("=")
        env.setdefault(key, value)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def manage(service: str, *args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, str(ROOT / service / "manage.py"), *args], env=env, check=True)


def wait_ready(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def after_start(env: dict[str, str]) -> None:
    port = env.get("GATEWAY_PORT", "8000")
    storage_port = env.get("STORAGE_PORT", "8002")
    if not wait_ready(f"http://127.0.0.1:{storage_port}/ready", 60):
        print("storage_svc did not become ready; see var/log/storage.jsonl", file=sys.stderr)
        return
    manage("ml_svc", "bootstrap_first_model", env=env)
    if wait_ready(f"http://127.0.0.1:{port}/ready", 60):
        print(f"\n  Digit Lab is running: open http://127.0.0.1:{port}/ (log in as viewer, engineer or admin)\n", flush=True)


def main() -> None:
    env = local_env()
    # Prometheus's multiprocess files belong to one run of the services: start empty.
    shutil.rmtree(ROOT / "var" / "metrics", ignore_errors=True)
    for service in ("storage", "collector", "ml", "gateway"):
        (ROOT / "var" / "metrics" / service).mkdir(parents=True)
    for service in ("storage_svc", "ml_svc", "gateway_site"):
        manage(service, "migrate", "--no-input", "-v0", env=env)
    for service in ("storage_svc", "gateway_site"):
        manage(service, "collectstatic", "--no-input", "-v0", env=env)
    manage("gateway_site", "seed_demo_accounts", env=env)
    threading.Thread(target=after_start, args=(env,), daemon=True).start()
    honcho = subprocess.Popen([str(ROOT / ".venv" / "bin" / "honcho"), "start", "-f", str(ROOT / "Procfile")], cwd=ROOT, env=env)
    try:
        sys.exit(honcho.wait())
    except KeyboardInterrupt:
        honcho.terminate()
        sys.exit(honcho.wait())


if __name__ == "__main__":
    main()
