"""A private PostgreSQL cluster from Debian's binaries, for `make test` on a machine without one and
for tests that must restart the database under load."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass
class Cluster:
    bindir: str
    data: str
    workdir: str
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data, "-o", options,
                        "-l", f"{self.workdir}/log", "-w", *args], check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")

    def stop(self) -> None:
        subprocess.run([*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data, "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.workdir, ignore_errors=True)


def available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))


def start_cluster() -> Cluster:
    """initdb and start a cluster on a free port; as root it runs as `postgres` (initdb refuses root)."""
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs:
        raise RuntimeError("PostgreSQL's binaries are not installed: apt-get install postgresql")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    workdir = tempfile.mkdtemp(prefix="pg-test-")
    if as_user:
        shutil.chown(workdir, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cluster = Cluster(bindirs[-1], f"{workdir}/data", workdir, port, as_user)
    subprocess.run([*as_user, f"{cluster.bindir}/initdb", "-D", cluster.data, "-U", "postgres", "--auth=trust"],
                   check=True, stdout=subprocess.DEVNULL)
    cluster.start()
    return cluster
