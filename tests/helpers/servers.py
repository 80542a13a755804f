"""A real ``nsml server start --host --port`` in the foreground, on a free port of 127.0.0.1.

The embedded server of ``Platform`` starts itself; these are the deployments a test starts
by hand, to reach it as remote clients do (accounts, fuzzing, a shared database).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

NSML = str(Path(sys.executable).parent / "nsml")
ADMIN_TOKEN = "admin-token-for-tests"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    """A port nobody listens on now (the kernel's pick), for a server or a dead endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(
    url: str,
    token: str,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    timeout: float = STARTUP_TIMEOUT_S,
) -> None:
    """Return once ``/api/v1/health`` answers 200; fail at the deadline, or at once when
    ``process`` exited, with ``log`` (the server's output holds the reason)."""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        try:
            if httpx.get(url + "/api/v1/health", headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        exited = process is not None and process.poll() is not None
        if exited or time.monotonic() > deadline:
            output = log.read_text(errors="replace") if log is not None and log.exists() else ""
            state = "exited" if exited else f"did not answer in {timeout:g} s"
            raise AssertionError(f"the server at {url} {state}\n{output}")
        time.sleep(0.1)


class ForegroundServer:
    """``nsml server start`` in ``home`` with admin ``token``, up and healthy once built;
    its output goes to ``log`` (beside ``home`` unless given), which ``output`` reads."""

    def __init__(
        self,
        home: Path,
        token: str = ADMIN_TOKEN,
        *options: str,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.home = home
        self.token = token
        self.port = port or free_port()  # a given one: the same address across a restart
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or home.with_name(home.name + ".log")
        environment = {**os.environ, "NSML_HOME": str(home), "NSML_SERVER_TOKEN": token, **(env or {})}
        for key in ("NSML_SERVER_URL", "NSML_TOKEN"):
            environment.pop(key, None)
        command = [NSML, "server", "start", "--host", "127.0.0.1", "--port", str(self.port), *options]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_healthy(self.url, token, self.process, self.log)
        except BaseException:
            self.stop()
            raise

    def get(self, path: str, token: str, **kwargs: Any) -> httpx.Response:
        """GET an API path (below ``/api/v1``) as the holder of ``token``."""
        return httpx.get(self.url + "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM (a graceful shutdown), SIGKILL if that takes too long; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> ForegroundServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def processes_with(tag: str) -> list[int]:
    """Live processes of this host (zombies left out) whose command line mentions ``tag``:
    a run that should have died with its server must not be among them."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if tag.encode() in (entry / "cmdline").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found
