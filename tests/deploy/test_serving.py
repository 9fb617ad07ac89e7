"""Every service is served by one command line, scripts/serve.py, in `make run` (Procfile), in the containers
(Dockerfile, compose.yml) and in the end-to-end tests, so that what the benchmarks measure is what runs."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
from pathlib import Path

import psycopg2
import pytest
import yaml

from scripts import local_postgres, serve
from tests.deploy.test_compose import STAGES

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"storage": "storage_svc", "collector": "collector_svc", "ml": "ml_svc", "gateway": "gateway_site"}
PROCFILE = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())


def procfile_serve_args(service: str) -> list[str]:
    words = shlex.split(re.sub(r"\$\{\w+:-(\w+)\}", r"\1", PROCFILE[service]))
    return words[words.index("scripts/serve.py") + 1:]


@pytest.mark.parametrize("service", FOLDERS)
def test_make_run_and_the_containers_serve_each_service_the_same_way(service):
    args = procfile_serve_args(service)
    assert args[0] == FOLDERS[service]
    stage = STAGES[FOLDERS[service]]
    assert f'CMD ["python", "scripts/serve.py", "{FOLDERS[service]}", ' in stage
    compose = yaml.safe_load((ROOT / "compose.yml").read_text())
    assert "command" not in compose["services"][service]  # the image's CMD: serve.py
    # the same threads per process: many for the gateway (it waits on its peers and batches), one elsewhere
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 1
    image_threads = int(re.search(r"SERVE_THREADS=(\d+)", stage).group(1)) if "SERVE_THREADS=" in stage else 1
    assert threads == image_threads == (96 if service == "gateway" else 1)


def test_granian_serves_by_default_with_the_settings_measured():
    command = serve.server_command("ml_svc", host="127.0.0.1", port=8003, workers=2, threads=1)
    assert Path(command[0]).name == "granian" and Path(command[0]).exists()
    options = dict(zip(command[1:-1:], command[2:], strict=False))
    assert options["--interface"] == "wsgi" and options["--workers"] == "2" and options["--blocking-threads"] == "1"
    assert "--respawn-failed-workers" in command  # a worker that dies is replaced, as gunicorn's arbiter does
    assert options["--workers-kill-timeout"] == str(serve.GRACE_S)
    assert command[-1] == "ml_svc.wsgi:application"
    gateway = serve.server_command("gateway_site", host="127.0.0.1", port=8010, workers=2, threads=96)
    gateway_options = dict(zip(gateway[1:-1], gateway[2:], strict=False))
    # every thread can take a request: the bound on requests in progress is not below the threads
    assert int(gateway_options["--backpressure"]) >= int(gateway_options["--blocking-threads"]) == 96


def test_the_gateway_runs_on_gunicorn_and_the_other_services_on_granian(monkeypatch):
    """Behind the front a request may carry any number of headers; granian refuses more than 100 with an empty 431."""
    monkeypatch.delenv("DIGITLAB_HTTP_SERVER", raising=False)
    assert {folder: serve.server_of(folder) for folder in FOLDERS.values()} == {
        "storage_svc": "granian", "collector_svc": "granian", "ml_svc": "granian", "gateway_site": "gunicorn"}
    monkeypatch.setenv("DIGITLAB_HTTP_SERVER", "granian")  # every service on one server, to compare
    assert serve.server_of("gateway_site") == "granian"


def test_gunicorn_stays_selectable_for_comparison():
    command = serve.server_command("storage_svc", host="0.0.0.0", port=8002, workers=3, threads=1, server="gunicorn")
    assert command[1:3] == ["-c", str(ROOT / "config" / "gunicorn.conf.py")] and "storage_svc.wsgi" in command
    with pytest.raises(ValueError, match="unknown server"):
        serve.server_command("storage_svc", host="0.0.0.0", port=8002, workers=1, threads=1, server="waitress")


def test_serve_resets_the_metrics_folder_migrates_when_asked_and_hands_over_to_the_server(tmp_path, monkeypatch):
    stale = tmp_path / "metrics" / "counter_123.db"
    stale.parent.mkdir()
    stale.write_text("a former run's counters")
    ran, executed = [], []
    monkeypatch.setenv("PYTHONPATH", "")  # serve.main sets it for the server: restored after the test
    monkeypatch.setenv("DIGITLAB_SERVING", "")
    monkeypatch.delenv("DIGITLAB_HTTP_SERVER", raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(stale.parent))
    monkeypatch.setenv("MIGRATE", "true")
    monkeypatch.setattr(serve.subprocess, "run", lambda argv, check: ran.append(argv))
    monkeypatch.setattr(serve.os, "execv", lambda path, argv: executed.append((Path.cwd(), argv)))
    monkeypatch.chdir(tmp_path)
    serve.main(["gateway_site", "--bind", "127.0.0.1:8010", "--workers", "2", "--threads", "96"])
    assert stale.parent.is_dir() and not stale.exists()
    assert ran == [serve.migrate_command("gateway_site")]
    # from the service's folder, wherever it was started (granian resolves the module from there)
    assert executed == [(ROOT / "gateway_site", serve.server_command(
        "gateway_site", host="127.0.0.1", port=8010, workers=2, threads=96, server=serve.server_of("gateway_site")))]
    assert str(ROOT / "gateway_site") in serve.os.environ["PYTHONPATH"].split(":")
    assert serve.os.environ["DIGITLAB_SERVING"] == "1", "ml_svc readies its model as a serving process starts"


def migrating_env(database: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "STORAGE_DATABASE_URL": database,
            "SECRET_KEY": secrets.token_urlsafe(40), "SERVICE_TOKEN": secrets.token_urlsafe(32),
            "STORAGE_BLOB_BACKEND": "local", "STORAGE_BLOB_DIR": str(tmp_path / "blobs")}


def test_a_replica_waits_to_migrate_while_another_holds_the_lock(tmp_path):
    server = os.environ.get("DATABASE_URL", local_postgres.LOCAL_SERVER)
    database = local_postgres.with_database(server, f"t_migrate_{secrets.token_hex(5)}")
    local_postgres.ensure_databases(server, [database])
    holder = psycopg2.connect(database)
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [serve.MIGRATION_LOCK])
        replica = subprocess.Popen(serve.migrate_command("storage_svc"), env=migrating_env(database, tmp_path),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            replica.wait(timeout=4)  # it waits for the lock, however long the first replica's migrations take
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [serve.MIGRATION_LOCK])
        output = replica.communicate(timeout=300)[0]
        assert replica.returncode == 0 and "Applying" in output, output
    finally:
        holder.close()
        local_postgres.drop_databases(server, [database])


def test_replicas_starting_together_migrate_one_at_a_time(tmp_path):
    """Two replicas of a service migrate a new database at once, as compose starts them: both succeed (without
    the lock, the second fails creating a table the first has just made) and every migration is applied once."""
    server = os.environ.get("DATABASE_URL", local_postgres.LOCAL_SERVER)
    database = local_postgres.with_database(server, f"t_migrate_{secrets.token_hex(5)}")
    local_postgres.ensure_databases(server, [database])
    env = migrating_env(database, tmp_path)
    try:
        replicas = [subprocess.Popen(serve.migrate_command("storage_svc"), env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outputs = [replica.communicate(timeout=300)[0] for replica in replicas]
        assert [replica.returncode for replica in replicas] == [0, 0], outputs
        assert sum("Applying storage" in output or "Applying registry" in output for output in outputs) == 1, outputs
        again = subprocess.run(serve.migrate_command("storage_svc"), env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "No migrations to apply" in again.stdout
    finally:
        local_postgres.drop_databases(server, [database])
