"""A private PostgreSQL cluster for development and tests, never the machine's own.

Debian 12's ``postgresql`` package provides the binaries; ``initdb`` makes a cluster in
a directory of ours, owned by the ``postgres`` user (the server refuses to run as root),
started with ``pg_ctl`` on its own loopback port with its socket in that directory.
Blocking subprocess calls: a development tool, not on the serve path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ivr.clibase import CliError

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "ivr"
DATABASE = "ivr"


class PostgresError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(f"local postgresql: {message}")


@dataclass(frozen=True)
class PgStatus:
    running: bool
    url: str
    directory: Path


def default_directory(instance: str) -> Path:
    # Not under root's home: the server runs as the postgres user, who cannot enter it.
    return Path("/var/tmp") / f"ivr-postgres-{instance}"


class LocalPostgres:
    """``up`` makes (once) and starts the cluster; ``url`` is what ``store.url`` takes."""

    def __init__(self, directory: Path, port: int, fast: bool = False) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = port
        self.fast = fast  # tests: no fsync (a crash of the machine may lose the cluster)
        self.log = directory / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _as_postgres(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if not (PG_BIN / "initdb").exists():
            raise PostgresError(f"{PG_BIN}/initdb is missing: apt-get install postgresql")
        full = ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)
        result = subprocess.run(full, capture_output=True, text=True, check=False, timeout=60)
        if check and result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise PostgresError(f"{cmd[0]} failed: {' | '.join(tail)}")
        return result

    def _ensure_cluster(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",  # loopback and a private socket only
            "--encoding=UTF8",
            "--locale=C",
        )

    def running(self) -> bool:
        result = self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "status", check=False
        )
        return result.returncode == 0

    def up(self) -> str:
        self._ensure_cluster()
        if not self.running():
            options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            if self.fast:
                options += " -c fsync=off"  # commits still reach the WAL before the answer
            self._as_postgres(
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.log),
                "-w",
                "-t",
                "30",
                "start",
            )
        self._ensure_database(DATABASE)
        return self.url

    def _ensure_database(self, name: str) -> None:
        psql = [str(PG_BIN / "psql"), "-h", str(self.directory), "-p", str(self.port)]
        probe = self._as_postgres(
            *psql, "-U", USER, "-d", "postgres", "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        )  # fmt: skip
        if probe.stdout.strip() != "1":
            self.create_database(name)

    def create_database(self, name: str) -> str:
        """A new empty database (tests make one per test); its URL."""
        self._as_postgres(
            str(PG_BIN / "createdb"), "-h", str(self.directory), "-p", str(self.port),
            "-U", USER, name,
        )  # fmt: skip
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def down(self, mode: str = "fast") -> bool:
        if not (self.data / "PG_VERSION").exists() or not self.running():
            return False
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        return True

    def kill(self) -> None:
        """Stop it abruptly (``immediate``: no checkpoint, as after a crash)."""
        self.down("immediate")

    def status(self) -> PgStatus:
        running = (self.data / "PG_VERSION").exists() and self.running()
        return PgStatus(running, self.url, self.directory)

    def destroy(self) -> None:
        with contextlib.suppress(PostgresError):
            self.down("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
