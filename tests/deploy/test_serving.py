"""Every service is served by one command line, scripts/serve.py, in `make run` (Procfile), in the containers
(Dockerfile, compose.yml) and in the end-to-end tests, so that what the benchmarks measure is what runs."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from scripts import serve
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
    assert ran == [[sys.executable, str(ROOT / "gateway_site" / "manage.py"), "migrate", "--no-input"]]
    # from the service's folder, wherever it was started (granian resolves the module from there)
    assert executed == [(ROOT / "gateway_site", serve.server_command(
        "gateway_site", host="127.0.0.1", port=8010, workers=2, threads=96, server=serve.server_of("gateway_site")))]
    assert str(ROOT / "gateway_site") in serve.os.environ["PYTHONPATH"].split(":")
    assert serve.os.environ["DIGITLAB_SERVING"] == "1", "ml_svc readies its model as a serving process starts"
