"""Serve one service's WSGI application: the one command line of every service's HTTP server.

    python scripts/serve.py <service folder> --bind HOST:PORT [--workers N] [--threads N] [--migrate]

Used alike by the Procfile (`make run`), the containers (Dockerfile, compose.yml), the end-to-end tests and the
benchmarks, so that all of them measure and run the same server with the same settings.

ml_svc, storage_svc and collector_svc run on granian (a Rust HTTP server; bench/README.md: ml_svc answered 1.35x
the predictions per second of gunicorn's sync workers). The gateway runs on gunicorn (config/gunicorn.conf.py): it
sits behind the front, which passes any number of headers within its size bounds, and granian refuses more than 100
headers with an empty 431 that would reach the client as a non-JSON error. `DIGITLAB_HTTP_SERVER=granian|gunicorn`
serves every service with one of them, to compare (`bench/load_predict.py compare --other-server`). Slow clients are
the front's business (nginx, config/nginx/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVERS = ("granian", "gunicorn")
BACKLOG = 2048
GRACE_S = 30  # a stopping worker finishes the requests it holds for up to this long
DEFAULT_SERVER = {"gateway_site": "gunicorn"}  # the others: granian


def server_of(folder: str) -> str:
    return os.environ.get("DIGITLAB_HTTP_SERVER") or DEFAULT_SERVER.get(folder, "granian")


def server_command(folder: str, *, host: str, port: int, workers: int, threads: int, server: str = "granian") -> list[str]:
    """The server's command line for `folder`'s application (module `<folder>.wsgi`)."""
    if server == "granian":
        return [
            str(BIN / "granian"), "--interface", "wsgi", "--http", "1", "--no-ws",
            "--host", host, "--port", str(port), "--workers", str(workers),
            # a CPU-bound service runs one thread per process (ml_svc measured fastest so); the gateway waits on its
            # peers with many, which also lets concurrent predictions share one batch
            "--blocking-threads", str(threads), "--backpressure", str(max(threads, 64)), "--backlog", str(BACKLOG),
            "--respawn-failed-workers", "--workers-kill-timeout", str(GRACE_S), "--no-access-log",
            f"{folder}.wsgi:application",  # imported from the folder serve.py starts it in
        ]
    if server == "gunicorn":
        return [
            str(BIN / "gunicorn"), "-c", str(ROOT / "config" / "gunicorn.conf.py"), "--chdir", str(ROOT / folder),
            "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", str(threads), f"{folder}.wsgi",
        ]
    raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")


# Replicas of a service start together and each migrates first: on PostgreSQL one at a time (a session advisory
# lock, per database, let go when the process ends); the next finds nothing left to apply.
MIGRATION_LOCK = 0x44_4C_4D_49  # "DLMI"
MIGRATE_ONE_AT_A_TIME = f"""
from django.core.management import call_command
from django.db import connection
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock({MIGRATION_LOCK})")
call_command("migrate", interactive=False, skip_checks=False)
"""


def migrate_command(folder: str) -> list[str]:
    """The service's migrations, applied by one replica at a time."""
    return [sys.executable, str(ROOT / folder / "manage.py"), "shell", "--no-startup", "--no-imports", "-c",
            MIGRATE_ONE_AT_A_TIME]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="the service's folder: storage_svc, collector_svc, ml_svc or gateway_site")
    parser.add_argument("--bind", required=True, help="HOST:PORT")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("SERVE_THREADS", "1")))
    parser.add_argument("--migrate", action="store_true", default=os.environ.get("MIGRATE", "false") == "true",
                        help="apply the service's migrations first (the containers of services with a database)")
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    command = server_command(args.folder, host=host, port=int(port), workers=args.workers, threads=args.threads,
                             server=server_of(args.folder))
    metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics:  # counters of a former run's processes would be added to this one's
        shutil.rmtree(metrics, ignore_errors=True)
        Path(metrics).mkdir(parents=True, exist_ok=True)
    if args.migrate:
        subprocess.run(migrate_command(args.folder), check=True)
    # The application is imported from its folder (granian resolves the module from the current directory, as
    # gunicorn's --chdir does); the kit comes from the repository root.
    paths = [str(ROOT / args.folder), str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    os.environ["DIGITLAB_SERVING"] = "1"  # this process answers requests: ml_svc readies its model as it starts
    os.chdir(ROOT / args.folder)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
