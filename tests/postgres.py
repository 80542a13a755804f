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


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_owner(command: list[str], owner: str | None) -> list[str]:
    """PostgreSQL refuses to run as root; run it as the `postgres` account then."""
    return ["runuser", "-u", owner, "--", *command] if owner else command


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh database on a private server."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="nsml-pg-"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if owner:
        shutil.chown(root, owner)
        shutil.chown(sockets, owner)
    run: dict[str, Any] = {"check": True, "capture_output": True, "timeout": 120}
    try:
        subprocess.run(
            _as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", "nsml", "-A", "trust"], owner), **run
        )
        options = f"-k {sockets} -c listen_addresses='' -c fsync=off"
        start = [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ]
        subprocess.run(_as_owner(start, owner), **run)
        try:
            subprocess.run(
                _as_owner([str(bin_dir / "createdb"), "-h", str(sockets), "-U", "nsml", "nsml"], owner), **run
            )
            yield f"postgresql+psycopg://nsml@/nsml?host={sockets}"
        finally:
            stop = [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
            subprocess.run(_as_owner(stop, owner), capture_output=True, timeout=120)
    finally:
        shutil.rmtree(root, ignore_errors=True)
