"""`make test`: every suite against real PostgreSQL, then one summary line.

PostgreSQL is the one at $DATABASE_URL (default 127.0.0.1:5432). Where none answers,
a throwaway cluster is started from Debian's postgresql binaries, except
in CI (CI=true), where an unreachable database is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import local_postgres  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
RESULTS = ROOT / "var" / "test-results"
SUITES = ["collector_svc", "storage_svc", "ml_svc", "gateway_site", "tests"]
MIGRATING_SERVICES = ["storage_svc", "ml_svc", "gateway_site"]
LINTED = ["kit", "storage_svc", "collector_svc", "ml_svc", "gateway_site", "scripts", "tests", "bench"]


def throwaway_postgres():
    """A private cluster for this run; returns (url, stop)."""
    cluster = local_postgres.start_cluster()
    print(f"started a throwaway PostgreSQL on port {cluster.port}", flush=True)
    return cluster.url, cluster.stop


def count(xml_file: Path) -> tuple[int, int, int]:
    root = ET.parse(xml_file).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    tests = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return tests - failed - skipped, failed, skipped


def main() -> int:
    url = os.environ.get("DATABASE_URL", local_postgres.LOCAL_SERVER)
    stop_postgres = None
    if not local_postgres.reachable(url):
        if os.environ.get("CI"):
            print(f"FAIL: PostgreSQL is unreachable at {url}; CI runs storage tests against it.", flush=True)
            return 2
        url, stop_postgres = throwaway_postgres()
    # Every suite on PostgreSQL, as the platform runs: storage's, the gateway's and the task queue's databases.
    env = dict(os.environ, DATABASE_URL=url, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1",
               GATEWAY_DATABASE_URL=local_postgres.with_database(url, "digitlab_gateway"),
               ML_DATABASE_URL=local_postgres.with_database(url, "digitlab_queue"))
    for name in ("SECRET_KEY", "SERVICE_TOKEN"):
        env.setdefault(name, "test-" + name.lower() + "-0123456789abcdef")
    shutil.rmtree(RESULTS, ignore_errors=True)
    RESULTS.mkdir(parents=True)
    problems = []
    lint = subprocess.run([str(ROOT / ".venv" / "bin" / "ruff"), "check", "--quiet", *LINTED], cwd=ROOT)
    if lint.returncode != 0:
        problems.append("ruff found problems (run `make lint`)")
    try:
        for service in MIGRATING_SERVICES:
            check = subprocess.run(
                [PYTHON, "manage.py", "makemigrations", "--check", "--dry-run"],
                cwd=ROOT / service, env={**env, f"{service.split('_')[0].upper()}_DEBUG": "true"},
                capture_output=True, text=True,
            )
            if check.returncode != 0:
                problems.append(f"{service}: model changes without a migration\n{check.stdout}{check.stderr}")
        passed = failed = skipped = 0
        for suite in SUITES:
            xml = RESULTS / f"{suite}.xml"
            print(f"\n=== {suite} ===", flush=True)
            code = subprocess.run(
                [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"],
                cwd=ROOT / suite, env=env,
            ).returncode
            if code == 5:
                problems.append(f"{suite}: no tests were collected")
            elif code != 0:
                problems.append(f"{suite}: pytest exited with {code}")
            if xml.exists():
                p, f, s = count(xml)
                passed, failed, skipped = passed + p, failed + f, skipped + s
    finally:
        if stop_postgres is not None:
            stop_postgres()
    print()
    for problem in problems:
        print("FAIL:", problem)
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if problems or failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
