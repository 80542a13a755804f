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
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ADMIN_TOKEN
        self.control = home.with_name(home.name + ".fault")
        self.paused = Path(f"{self.control}.paused")
        self.env = {**(env or {}), "NSML_FAULT_CONTROL": str(self.control)}
        self.starts = 0
        self.server: ForegroundServer | None = None

    def start(self) -> ForegroundServer:
        """Up and healthy, with no pause point armed."""
        self.stop()
        self.control.write_text("")
        self.paused.unlink(missing_ok=True)
        self.starts += 1
        log = self.home.with_name(f"{self.home.name}-{self.starts}.log")
        self.server = ForegroundServer(
            self.home, self.token, *self.options, env=self.env, log=log, port=self.port
        )
        return self.server

    @property
    def running(self) -> ForegroundServer:
        """The server started last (a test reads its API and log through it)."""
        assert self.server is not None, "the server is not running"
        return self.server

    def arm(self, point: str) -> None:
        """The next operation through ``point`` (``NAME`` or ``NAME:N``) stops there."""
        self.control.write_text(point)

    def kill_when_paused(self, timeout: float = PAUSE_TIMEOUT_S) -> None:
        """SIGKILL the server as soon as it waits at its pause point: nothing of it runs on."""
        server = self.running
        deadline = time.monotonic() + timeout
        while not self.paused.exists():
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise AssertionError(f"the server never reached its pause point\n{server.output()}")
            time.sleep(0.05)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
        self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
