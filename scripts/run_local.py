"""`make run`: prepare the local platform on PostgreSQL and start every service with honcho (Procfile).

Database: $DATABASE_URL when given; else the server answering at 127.0.0.1:5432; else a private cluster under
var/postgres started from Debian's binaries. `--sqlite` (`make run SQLITE=1`) opts into SQLite files instead.
Ports come from $GATEWAY_PORT (the front, nginx), $STORAGE_PORT, $COLLECTOR_PORT, $ML_PORT (8000-8003) and
$GATEWAY_APP_PORT (8010, the gateway behind the front) and the run's files from
$DIGITLAB_VAR (var/). Secrets are generated once into var/local.env (never committed); demo accounts get
$DEMO_PASSWORD or a generated password, printed once.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import local_postgres  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
SERVICES = {"storage": "storage_svc", "collector": "collector_svc", "ml": "ml_svc", "gateway": "gateway_site"}
# The gateway's port is the front's (nginx); the gateway itself listens on gateway_app, on loopback only.
DEFAULT_PORTS = {"gateway": 8000, "collector": 8001, "storage": 8002, "ml": 8003, "gateway_app": 8010}


def local_env(var: Path) -> dict[str, str]:
    """The environment every process of the run gets: secrets, ports, peer URLs and where files go."""
    env_file = var / "local.env"
    if not env_file.exists():
        env_file.write_text(f"SECRET_KEY={secrets.token_urlsafe(40)}\nSERVICE_TOKEN={secrets.token_urlsafe(32)}\n")
        env_file.chmod(0o600)
    env = dict(os.environ)
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        env.setdefault(key, value)
    ports = {name: env.setdefault(f"{name.upper()}_PORT", str(port)) for name, port in DEFAULT_PORTS.items()}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env.update({
        "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "DIGITLAB_VAR": str(var),
        "GATEWAY_STORAGE_URL": urls["storage"], "GATEWAY_COLLECTOR_URL": urls["collector"], "GATEWAY_ML_URL": urls["ml"],
        "ML_STORAGE_URL": urls["storage"], "ML_COLLECTOR_URL": urls["collector"], "COLLECTOR_STORAGE_URL": urls["storage"],
        "STORAGE_BLOB_DIR": str(var / "blobs"), "COLLECTOR_DOWNLOAD_CACHE_DIR": str(var / "cache" / "collector"),
    })
    for name in SERVICES:
        env[f"{name.upper()}_LOG_FILE"] = str(var / "log" / f"{name}.jsonl")
    return env


def choose_database(env: dict[str, str], var: Path, sqlite: bool):
    """Each service's database URL, a line saying which database this is, and how to stop a cluster we started."""
    if sqlite:
        urls = {name: f"sqlite:///{var}/{file}" for name, file in
                (("storage", "storage.sqlite3"), ("gateway", "gateway.sqlite3"), ("ml", "ml_queue.sqlite3"))}
        return urls, f"SQLite files in {var} (opt-in; PostgreSQL is the default)", None
    stop = None
    if env.get("DATABASE_URL"):
        server, where = env["DATABASE_URL"], "$DATABASE_URL"
    elif local_postgres.reachable(local_postgres.LOCAL_SERVER):
        server = local_postgres.with_database(local_postgres.LOCAL_SERVER, local_postgres.DATABASES["storage"])
        where = "the server at 127.0.0.1:5432"
    else:
        if not local_postgres.available():
            sys.exit("No PostgreSQL answers at 127.0.0.1:5432 and its binaries are missing: run `make run` "
                     "(it installs Debian's postgresql), set DATABASE_URL, or opt into SQLite with `make run SQLITE=1`.")
        port_file = var / "postgres.port"
        port = int(port_file.read_text()) if port_file.exists() else local_postgres.free_port()
        port_file.write_text(str(port))
        cluster = local_postgres.start_cluster(var / "postgres", port)
        server = local_postgres.with_database(cluster.url, local_postgres.DATABASES["storage"])
        where, stop = f"a private cluster in {cluster.workdir} (port {port})", cluster.stop
    urls = local_postgres.service_database_urls(server)
    try:
        local_postgres.ensure_databases(local_postgres.with_database(server, "postgres"), list(urls.values()))
    except Exception as exc:  # a clear stop, whatever the server said
        if stop:
            stop()
        sys.exit(f"Could not create the databases on {where}: {exc}")
    names = ", ".join(map(local_postgres.database_name, urls.values()))
    return urls, f"PostgreSQL: {where}, databases {names}", stop


def forget(var: Path) -> None:
    """`make clean`: var/ is about to go, and with it the blobs the databases name; so drop the local run's
    databases on 127.0.0.1:5432 and stop a private cluster running from var/. $DATABASE_URL's are left alone."""
    if os.environ.get("DATABASE_URL"):
        print("$DATABASE_URL is set: its databases are yours to drop")
    elif local_postgres.reachable(local_postgres.LOCAL_SERVER):
        urls = local_postgres.service_database_urls(
            local_postgres.with_database(local_postgres.LOCAL_SERVER, local_postgres.DATABASES["storage"]))
        local_postgres.drop_databases(local_postgres.LOCAL_SERVER, list(urls.values()))
        print(f"dropped {', '.join(map(local_postgres.database_name, urls.values()))} at 127.0.0.1:5432")
    port_file = var / "postgres.port"
    if port_file.exists():
        cluster = local_postgres.start_cluster(var / "postgres", int(port_file.read_text()))
        cluster.stop()
        shutil.rmtree(cluster.workdir, ignore_errors=True)  # outside var/ when root's folders were closed to it


def manage(service: str, *args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, str(ROOT / service / "manage.py"), *args], env=env, check=True)


def manage_at_once(commands: list[tuple[str, ...]], env: dict[str, str]) -> None:
    """Run independent management commands side by side (each is mostly Python start-up); stop if one fails."""
    running = [(command, subprocess.Popen([PYTHON, str(ROOT / command[0] / "manage.py"), *command[1:]], env=env))
               for command in commands]
    failed = [" ".join(command) for command, process in running if process.wait() != 0]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


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


def after_start(env: dict[str, str], database: str) -> None:
    try:  # beside the services' start-up: the command waits for storage_svc itself
        manage("ml_svc", "bootstrap_first_model", "--wait", "60", env=env)
    except subprocess.CalledProcessError:
        print(f"no first model was queued; see {env['STORAGE_LOG_FILE']}", file=sys.stderr)
        return
    port = env["GATEWAY_PORT"]
    if wait_ready(f"http://127.0.0.1:{port}/ready", 60):
        print(f"\n  Digit Lab is running: open http://127.0.0.1:{port}/ (log in as viewer, engineer or admin)"
              f"\n  Database: {database}\n", flush=True)


def ml_workers() -> int:
    """How many task-queue workers to start: `ML_WORKER_COUNT` (1 to 16, default 1); a sweep's trials run on as
    many at once."""
    raw = os.environ.get("ML_WORKER_COUNT", "1")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 16):
        raise SystemExit(f"ML_WORKER_COUNT must be a whole number from 1 to 16, not {raw!r}")
    return int(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", action="store_true", help="SQLite files instead of PostgreSQL (opt-in)")
    parser.add_argument("--forget", action="store_true", help="drop the local run's databases (make clean)")
    args = parser.parse_args()
    workers = ml_workers()  # a mistake here stops make run before anything starts
    var = Path(os.environ.get("DIGITLAB_VAR", ROOT / "var")).resolve()
    if args.forget:
        forget(var)
        return
    var.mkdir(parents=True, exist_ok=True)
    honcho: list[subprocess.Popen] = []

    def stop(*_):
        """Ctrl-C, SIGTERM or a closed terminal: honcho stops every service; before it runs, stop right here."""
        if not honcho:
            raise KeyboardInterrupt
        honcho[0].terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    env = local_env(var)
    stop_database = None
    try:
        urls, database, stop_database = choose_database(env, var, args.sqlite)
        print(f"Database: {database}", flush=True)
        env.update({"STORAGE_DATABASE_URL": urls["storage"], "GATEWAY_DATABASE_URL": urls["gateway"],
                    "ML_DATABASE_URL": urls["ml"]})
        manage_at_once([(service, "migrate", "--no-input", "-v0") for service in ("storage_svc", "ml_svc", "gateway_site")]
                       + [("storage_svc", "collectstatic", "--no-input", "-v0")], env)
        manage_at_once([("gateway_site", "collectstatic", "--no-input", "-v0"), ("gateway_site", "seed_demo_accounts")], env)
        threading.Thread(target=after_start, args=(env, database), daemon=True).start()
        honcho.append(subprocess.Popen([str(ROOT / ".venv" / "bin" / "honcho"), "start", "-f", str(ROOT / "Procfile"),
                                        "-c", f"ml_worker={workers}"], cwd=ROOT, env=env))
        try:
            code = honcho[0].wait()
        except KeyboardInterrupt:
            honcho[0].terminate()
            code = honcho[0].wait()
    except KeyboardInterrupt:
        code = 130
    finally:
        if stop_database:
            stop_database()
    sys.exit(code)


if __name__ == "__main__":
    main()
