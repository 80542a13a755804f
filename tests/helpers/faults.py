"""A server that a test kills (SIGKILL) at a named point of an operation and starts again
on the same home, database and address, as after a crash (``nsml.fault_points``)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from helpers.servers import ADMIN_TOKEN, ForegroundServer, free_port

PAUSE_TIMEOUT_S = 60.0


class CrashableServer:
    """``nsml server start`` in ``home``; :meth:`start` again after :meth:`kill_when_paused`
    finds the same sessions, checkpoints, datasets and submissions on disk and in the store."""

    def __init__(self, home: Path, *options: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.options = options
        self.env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ADMIN_TOKEN
        self.marker = home.with_name(home.name + ".paused")
        self.starts = 0
        self.server: ForegroundServer | None = None

    def start(self, pause: str | None = None, **env: str) -> ForegroundServer:
        """Up and healthy; with ``pause``, it waits at that point once an operation gets there."""
        self.stop()
        self.marker.unlink(missing_ok=True)
        self.starts += 1
        environment = {**self.env, **env}
        if pause is not None:
            environment.update(NSML_FAULT_PAUSE=pause, NSML_FAULT_MARKER=str(self.marker))
        log = self.home.with_name(f"{self.home.name}-{self.starts}.log")
        self.server = ForegroundServer(
            self.home, self.token, *self.options, env=environment, log=log, port=self.port
        )
        return self.server

    def kill_when_paused(self, timeout: float = PAUSE_TIMEOUT_S) -> None:
        """SIGKILL the server as soon as it waits at its pause point: nothing of it runs on."""
        assert self.server is not None
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if time.monotonic() > deadline or self.server.process.poll() is not None:
                raise AssertionError(f"the server never reached its pause point\n{self.server.output()}")
            time.sleep(0.05)
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(timeout=30)
        self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
