"""PostgreSQL for `make run` and `make test`: the server to use, the databases the services need on it, and
a private cluster from Debian's binaries where no server answers."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse, urlunparse

import psycopg2
from psycopg2 import sql

LOCAL_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
# The services' databases on one server: storage's domain data, the gateway's users/sessions/audit, the task queue.
DATABASES = {"storage": "digitlab", "gateway": "digitlab_gateway", "ml": "digitlab_queue"}


def reachable(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=3).close()
        return True
    except psycopg2.OperationalError:
        return False


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` on the same server (its query, e.g. sslmode, kept)."""
    return urlunparse(urlparse(url)._replace(path=f"/{quote(name)}"))


def database_name(url: str) -> str:
    return unquote(urlparse(url).path.lstrip("/"))


def ensure_databases(server_url: str, urls: list[str]) -> None:
    """Create each database named by `urls` that does not exist yet."""
    _each_database(server_url, urls, "SELECT 1 FROM pg_database WHERE datname = %s", "CREATE DATABASE {}")


def drop_databases(server_url: str, urls: list[str]) -> None:
    _each_database(server_url, urls, None, "DROP DATABASE IF EXISTS {} WITH (FORCE)")


def _each_database(server_url: str, urls: list[str], unless: str | None, statement: str) -> None:
    connection = psycopg2.connect(server_url, connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            for name in map(database_name, urls):
                if unless:
                    cursor.execute(unless, [name])
                    if cursor.fetchone() is not None:
                        continue
                cursor.execute(sql.SQL(statement).format(sql.Identifier(name)))
    finally:
        connection.close()


def service_database_urls(database_url: str) -> dict[str, str]:
    """Per service, its database: `database_url` names the server and storage's database; the gateway's and the
    queue's are siblings named after it (`<name>_gateway`, `<name>_queue`)."""
    storage = database_name(database_url) or DATABASES["storage"]
    return {"storage": with_database(database_url, storage), "gateway": with_database(database_url, f"{storage}_gateway"),
            "ml": with_database(database_url, f"{storage}_queue")}


@dataclass
class Cluster:
    """A PostgreSQL cluster of our own, listening on 127.0.0.1:`port` with its socket in `workdir`."""

    bindir: str
    workdir: str
    port: int
    as_user: list[str]
    throwaway: bool = True

    @property
    def data(self) -> str:
        return f"{self.workdir}/data"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if self.throwaway:
            options += " -c fsync=off"
        subprocess.run([*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data, "-o", options,
                        "-l", f"{self.workdir}/log", "-w", *args], check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        subprocess.run([*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.throwaway:
            shutil.rmtree(self.workdir, ignore_errors=True)


def available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_cluster(workdir: Path | None = None, port: int | None = None) -> Cluster:
    """Start a cluster: in `workdir`, kept across starts (initdb the first time), or else a throwaway one in a
    temporary folder. As root it runs as `postgres` (initdb refuses root)."""
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2]))
    if not bindirs:
        raise RuntimeError("PostgreSQL's binaries are not installed: apt-get install postgresql")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    throwaway = workdir is None
    if workdir is not None and as_user and subprocess.run([*as_user, "test", "-x", str(workdir.parent)]).returncode:
        # root's folders are closed to the `postgres` user: keep the cluster where it can go, one per folder
        workdir = Path(tempfile.gettempdir()) / f"digitlab-postgres-{hashlib.sha1(str(workdir).encode()).hexdigest()[:10]}"
    folder = tempfile.mkdtemp(prefix="pg-test-") if workdir is None else str(workdir)
    Path(folder).mkdir(parents=True, exist_ok=True)
    if as_user:
        shutil.chown(folder, "postgres")
    cluster = Cluster(bindirs[-1], folder, port or free_port(), as_user, throwaway)
    if not Path(cluster.data, "PG_VERSION").exists():
        subprocess.run([*as_user, f"{cluster.bindir}/initdb", "-D", cluster.data, "-U", "postgres", "--auth=trust"],
                       check=True, stdout=subprocess.DEVNULL)
    running = subprocess.run([*as_user, f"{cluster.bindir}/pg_ctl", "-D", cluster.data, "status"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if not running:  # a run that was killed may have left it running: then it is taken as it is
        cluster.start()
    return cluster
