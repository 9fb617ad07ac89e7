"""Start the whole platform as real processes on free ports, for end-to-end tests."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from scripts import front, local_postgres

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SERVICES = {"storage": "storage_svc", "collector": "collector_svc", "ml": "ml_svc", "gateway": "gateway_site"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Platform:
    workdir: Path
    database_server: str = ""
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    databases: dict[str, str] = field(default_factory=dict)
    admin_url: str = ""
    demo_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    # server workers per service (default 1); the gateway runs threads as in the Procfile
    workers: dict[str, int] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=lambda: {"gateway": 96})
    # configuration overrides (environment variables) for every process
    settings: dict[str, str] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self) -> None:
        self._create_database()
        # "gateway" is the front (nginx, as in make run); the gateway's own server listens on "gateway_app"
        self.ports = {name: free_port() for name in (*SERVICES, "gateway_app")}
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.env = {**self.environment(), **self.settings}
        for service in ("storage_svc", "ml_svc", "gateway_site"):
            self.manage(service, "migrate", "--no-input", "-v0")
        self.manage("gateway_site", "seed_demo_accounts")
        self.manage("gateway_site", "collectstatic", "--no-input", "-v0")
        self.launch()

    def environment(self) -> dict[str, str]:
        """What every process is told (before `settings`)."""
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            SECRET_KEY=secrets.token_urlsafe(40),
            SERVICE_TOKEN=secrets.token_urlsafe(32),
            DEMO_PASSWORD=self.demo_password,
            STORAGE_DATABASE_URL=self.databases["storage"],
            STORAGE_BLOB_BACKEND="local", STORAGE_BLOB_DIR=str(self.workdir / "blobs"),
            ML_DATABASE_URL=self.databases["ml"],
            GATEWAY_DATABASE_URL=self.databases["gateway"],
            ML_STORAGE_URL=self.url("storage"),
            ML_COLLECTOR_URL=self.url("collector"),
            GATEWAY_STORAGE_URL=self.url("storage"),
            GATEWAY_COLLECTOR_URL=self.url("collector"),
            GATEWAY_ML_URL=self.url("ml"),
            ML_ALIAS_REFRESH_S="0.5",
            COLLECTOR_STORAGE_URL=self.url("storage"),
            # Offline: full MNIST only from the official test set beside the repository.
            COLLECTOR_MNIST_DIR=str(ROOT.parent / "shared" / "datasets" / "mnist-t10k"),
            COLLECTOR_MNIST_MIRRORS="",
            COLLECTOR_DOWNLOAD_CACHE_DIR=str(self.workdir / "downloads"),
        )
        for name in SERVICES:
            env[f"{name.upper()}_LOG_FILE"] = str(self.workdir / "logs" / f"{name}.jsonl")
        return env

    def launch(self) -> None:
        """Every process, once the databases are ready; returns when the services answer."""
        for name in SERVICES:
            self.start_service(name)
        self.start_front()
        self.start_worker()
        self.start_worker("ml_webhooks")
        for name in SERVICES:
            self.wait_ready(name)

    def manage(self, service: str, *args: str) -> str:
        done = subprocess.run(
            [PYTHON, str(ROOT / service / "manage.py"), *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"{service} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def ensure_production_model(self, timeout_s: float = 180) -> dict:
        """Run the first-start job unless a model serves; returns the production version."""
        storage = {"X-Service-Token": self.env["SERVICE_TOKEN"]}
        alias = requests.get(self.url("storage") + "/aliases/production", headers=storage, timeout=5)
        if alias.status_code == 200:
            return alias.json()["model_version"]
        assert "queued" in self.manage("ml_svc", "bootstrap_first_model", "--epochs", "2")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            alias = requests.get(self.url("storage") + "/aliases/production", headers=storage, timeout=5)
            if alias.status_code == 200:
                time.sleep(1.0)  # serving processes re-read the alias every 0.5 s
                return alias.json()["model_version"]
            time.sleep(1)
        raise TimeoutError("no production model after the first-start job")

    def _spawn(self, key: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        """A process of the platform, known as `key`, in a process group of its own, its output in logs/<key>.out."""
        self.processes[key] = subprocess.Popen(
            argv, env=env or self.env, stdout=open(self.workdir / "logs" / f"{key}.out", "ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start_service(self, name: str, workers: int | None = None, *, host: str = "127.0.0.1", key: str | None = None,
                      env: dict[str, str] | None = None) -> None:
        """`name`'s HTTP server on `host` (known as `key`, by default `name`; told `env`, by default self.env)."""
        key = key or name
        metrics = self.workdir / "metrics" / key  # emptied by serve.py
        self._spawn(key, [
            PYTHON, str(ROOT / "scripts" / "serve.py"), SERVICES[name], "--workers", str(workers or self.workers.get(name, 1)),
            "--bind", f"{host}:{self.ports['gateway_app' if name == 'gateway' else name]}",
            "--threads", str(self.threads.get(name, 1)),
        ], {**(env or self.env), "PROMETHEUS_MULTIPROC_DIR": str(metrics)})

    def start_front(self, upstreams: list[str] | None = None) -> None:
        """nginx before the gateway replicas `upstreams` (host:port; by default the one gateway)."""
        conf = front.render(self.workdir / "front", listen=f"127.0.0.1:{self.ports['gateway']}",
                            upstreams=upstreams or [f"127.0.0.1:{self.ports['gateway_app']}"])
        self._spawn("front", front.command(conf))

    def start_worker(self, name: str = "ml_worker", *, key: str | None = None, env: dict[str, str] | None = None,
                     worker_id: str | None = None) -> None:
        command = ["webhook_worker", "--interval", "0.2"] if name == "ml_webhooks" else [
            "db_worker", "--interval", "0.2", "--no-reload", "--no-startup-delay",
            *(["--worker-id", worker_id] if worker_id else [])]
        self._spawn(key or name, [PYTHON, str(ROOT / "ml_svc" / "manage.py"), *command], env)

    def wait_ready(self, name: str, timeout_s: float = 60, *, key: str | None = None, url: str | None = None) -> None:
        """Until `name` (the process `key`, by default `name`, at `url`, by default its own) answers /ready."""
        key, url = key or name, url or self.url(name)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.processes[key].poll() is not None:
                raise RuntimeError(f"{key} exited; see {self.workdir}/logs/{key}.out")
            try:
                if requests.get(url + "/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{key} was not ready within {timeout_s} s")

    def stop_service(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.processes):
            try:
                self.stop_service(name)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.processes.pop(name, None).pid, signal.SIGKILL) if name in self.processes else None
        self._drop_database()

    @property
    def database(self) -> str:
        """storage_svc's database."""
        return self.databases["storage"]

    def _create_database(self) -> None:
        """Fresh databases for storage, the gateway and the task queue, as `make run` makes them."""
        self.admin_url = self.database_server or os.environ.get("DATABASE_URL", local_postgres.LOCAL_SERVER)
        self.databases = local_postgres.service_database_urls(
            local_postgres.with_database(self.admin_url, f"e2e_{secrets.token_hex(6)}"))
        local_postgres.ensure_databases(self.admin_url, list(self.databases.values()))

    def _drop_database(self) -> None:
        local_postgres.drop_databases(self.admin_url, list(self.databases.values()))


@dataclass
class ServiceProcess:
    """A process of the default run, for the benchmarks: its pid, and whether it still runs."""

    pid: int

    def poll(self) -> int | None:
        return None if Path(f"/proc/{self.pid}").exists() else 1


class DefaultRun:
    """`scripts/run_local.py` in a process group of its own, with its files in `var`."""

    def __init__(self, var: Path, sqlite: bool = False, settings: dict[str, str] | None = None):
        self.var, self.sqlite = var, sqlite
        self.ports = {name: free_port() for name in ("gateway", "collector", "storage", "ml", "gateway_app")}
        self.password = self.demo_password = secrets.token_urlsafe(12)
        self.database_name = "" if sqlite else f"e2e_run_{secrets.token_hex(5)}"
        self.server = os.environ.get("DATABASE_URL", local_postgres.LOCAL_SERVER)
        env = {key: value for key, value in os.environ.items()
               if not key.endswith("_DATABASE_URL") and key not in ("SECRET_KEY", "SERVICE_TOKEN")}
        env.update({f"{name.upper()}_PORT": str(port) for name, port in self.ports.items()})
        env.update(DIGITLAB_VAR=str(var), DEMO_PASSWORD=self.password, **(settings or {}))
        if sqlite:
            env.pop("DATABASE_URL", None)
        else:
            env["DATABASE_URL"] = local_postgres.with_database(self.server, self.database_name)
        self.output = var.parent / "make-run.out"
        command = [sys.executable, str(ROOT / "scripts" / "run_local.py"), *(["--sqlite"] if sqlite else [])]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(self.output, "wb"),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def workdir(self) -> Path:
        return self.var.parent

    @property
    def env(self) -> dict[str, str]:
        """The generated secrets, as the services got them."""
        lines = (self.var / "local.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    @property
    def database(self) -> str:
        """storage_svc's database (PostgreSQL runs only)."""
        return local_postgres.with_database(self.server, self.database_name)

    @property
    def processes(self) -> dict[str, ServiceProcess]:
        """Each service's main process under honcho (the HTTP server's master; the worker's manage.py; nginx's master)."""
        found = {}
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
                environ = (entry / "environ").read_bytes()
            except (OSError, ValueError):
                continue
            if f"DIGITLAB_VAR={self.var}".encode() not in environ.split(b"\0"):
                continue
            text = [part.decode(errors="replace") for part in command]
            for name, service in SERVICES.items():
                if any(part.startswith(f"{service}.wsgi") for part in text):  # the server's master and workers
                    found.setdefault(name, []).append(int(entry.name))
            if "db_worker" in text:
                found.setdefault("ml_worker", []).append(int(entry.name))
            if "webhook_worker" in text:
                found.setdefault("ml_webhooks", []).append(int(entry.name))
        front = self.var / "front" / "nginx.pid"  # nginx writes its title over its environment: found by its pid file
        if front.exists():
            found["front"] = [int(front.read_text())]
        return {name: ServiceProcess(min(pids)) for name, pids in found.items()}

    def wait_for_first_prediction(self, timeout_s: float = 240) -> tuple[dict, float]:
        """Log in as the viewer once the gateway answers, then predict until the first model serves; returns the
        viewer's token header and when the first prediction was answered."""
        deadline = time.monotonic() + timeout_s
        headers = None
        while headers is None and time.monotonic() < deadline:
            assert self.process.poll() is None, self.output.read_text()[-3000:]
            try:
                answer = requests.post(f"{self.gateway}/api/auth/token", timeout=5,
                                       json={"username": "viewer", "password": self.password})
                if answer.status_code == 200:
                    headers = {"Authorization": f"Token {answer.json()['token']}"}
            except requests.RequestException:
                pass
            time.sleep(0.5)
        digit = [[255 if 6 <= row < 22 and col in (13, 14) else 0 for col in range(28)] for row in range(28)]  # a "1"
        while time.monotonic() < deadline:
            answer = requests.post(f"{self.gateway}/api/predictions", json={"pixels": digit}, headers=headers, timeout=10)
            if answer.status_code == 201:
                return headers, time.monotonic()
            time.sleep(0.5)
        raise TimeoutError(f"no prediction within {timeout_s} s:\n{self.output.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.database_name:
            local_postgres.drop_databases(self.server, list(local_postgres.service_database_urls(self.database).values()))

    def logged_errors(self) -> list[str]:
        """Error lines of every service's JSON log, and tracebacks or server errors in honcho's output."""
        errors = []
        for log in (self.var / "log").glob("*.jsonl"):
            errors += [line for line in log.read_text().splitlines() if json.loads(line)["level"] in ("error", "critical")]
        errors += [line for line in self.output.read_text(errors="replace").splitlines()
                   if "Traceback" in line or "[ERROR]" in line or "[CRITICAL]" in line]
        return errors
