"""A throw-away PostgreSQL server for the tests: Debian's binaries, a temporary data
folder, a Unix socket only (no TCP at all), stopped at the end."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RUN: dict[str, Any] = {"check": True, "capture_output": True, "timeout": 120}


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    """PostgreSQL refuses to run as root; run it as the `postgres` account then."""
    return ["runuser", "-u", owner, "--", *command] if owner else command


class PostgresServer:
    """One server on its data folder: ``url`` reaches its database ``nsml``; ``stop`` and
    ``start`` restart it on the same data, as an operator's restart would."""

    def __init__(self, bin_dir: Path, root: Path, owner: str | None) -> None:
        self.bin_dir, self.root, self.owner = bin_dir, root, owner
        self.data, self.sockets = root / "data", root / "run"
        self.url = f"postgresql+psycopg://nsml@/nsml?host={self.sockets}"

    def _pg_ctl(self, *args: str) -> list[str]:
        return _as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args], self.owner)

    def start(self) -> None:
        options = f"-k {self.sockets} -c listen_addresses='' -c fsync=off"
        subprocess.run(self._pg_ctl("-o", options, "-l", str(self.root / "log"), "-w", "start"), **RUN)

    def stop(self) -> None:
        subprocess.run(self._pg_ctl("-m", "fast", "-w", "stop"), capture_output=True, timeout=120)


@contextmanager
def postgres_instance() -> Iterator[PostgresServer]:
    """A fresh server with an empty database ``nsml``, removed afterwards."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    owner = "postgres" if os.geteuid() == 0 else None
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="nsml-pg-")), owner)
    server.sockets.mkdir()
    if owner:
        shutil.chown(server.root, owner)
        shutil.chown(server.sockets, owner)
    try:
        subprocess.run(
            _as_owner([str(bin_dir / "initdb"), "-D", str(server.data), "-U", "nsml", "-A", "trust"], owner),
            **RUN,
        )
        server.start()
        try:
            createdb = [str(bin_dir / "createdb"), "-h", str(server.sockets), "-U", "nsml", "nsml"]
            subprocess.run(_as_owner(createdb, owner), **RUN)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh database on a private server."""
    with postgres_instance() as server:
        yield server.url
