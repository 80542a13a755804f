"""The server's side of one Ray actor: an evaluation relayed to its ``nsml.paused``, and
the calls every run makes on its actor (its limit, its cleanup) with their timeouts.

Sessions are scheduled by :mod:`nsml.runners.ray_cluster`; an evaluation starts at once,
so it needs no queue, only the relay between the platform's channel and the actor.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsml.runners.ray_worker import HostedRun

POLL_S = 0.2
CALL_TIMEOUT_S = 60.0
KILL_DRAIN_S = 5.0  # how long a killed evaluation's log may take to come back
Acquire = Callable[[Callable[[], bool]], Any]  # acquire(gone): an actor with a node, or None


class RayEvaluation:
    """An evaluation on a Ray node; ``channel`` is relayed to its ``nsml.paused``.

    Test inputs and predictions cross the cluster through the actor's calls; the labels
    stay on the server, which scores."""

    def __init__(
        self, acquire: Callable[[Callable[[], bool]], Any], hosted: HostedRun, log_path: Path
    ) -> None:
        """``acquire(gone)``: the actor to run on, once it has a node; None if ``gone()``
        turned true first (the evaluation was killed while it waited)."""
        self.actor: Any = None
        self._acquire = acquire
        self._killed = False
        self.channel, self._relay = socket.socketpair()
        self._log_path = log_path
        self._code: int | None = None
        self._ended = threading.Event()
        threading.Thread(target=self._monitor, args=(hosted,), daemon=True).start()

    def _monitor(self, hosted: HostedRun) -> None:
        import ray

        self.actor = self._acquire(lambda: self._killed)
        if self.actor is None:
            self._end(-9)
            return
        try:
            with self._log_path.open("ab", buffering=0) as out:
                try:
                    ray.get(self.actor.start.remote(hosted))
                except Exception as exc:
                    out.write(f"[nsml] could not start on Ray: {first_line(exc)}\n".encode())
                    self._end(1)
                    return
                threading.Thread(target=self._to_process, daemon=True).start()
                threading.Thread(target=self._from_process, daemon=True).start()
                offset = 0
                while not self._ended.is_set():
                    try:
                        chunk, code = ray.get(self.actor.poll.remote(offset), timeout=CALL_TIMEOUT_S)
                    except Exception as exc:
                        out.write(f"[nsml] the Ray worker was lost: {first_line(exc)}\n".encode())
                        self._end(-9)
                        return
                    out.write(chunk)
                    offset += len(chunk)
                    if code is not None:
                        self._end(code)
                        return
                    if not chunk:
                        time.sleep(POLL_S)
        finally:
            finish_actor(self.actor)

    def _end(self, code: int) -> None:
        if self._code is None:
            self._code = code
        self._ended.set()
        close_socket(self._relay)

    def _to_process(self) -> None:
        import ray

        try:
            while data := self._relay.recv(1 << 20):
                ray.get(self.actor.write.remote(data), timeout=CALL_TIMEOUT_S)
        except Exception:  # the relay or the actor is gone; _monitor records the end
            return

    def _from_process(self) -> None:
        import ray

        try:
            while not self._ended.is_set():
                data = ray.get(self.actor.read.remote(), timeout=CALL_TIMEOUT_S)
                if data is None:
                    continue
                if not data:
                    break
                self._relay.sendall(data)
        except Exception:
            pass
        close_socket(self._relay)

    def wait(self, timeout: float | None) -> int | None:
        self._ended.wait(timeout)
        return self._code

    def limit_reason(self) -> str | None:
        return None if self.actor is None else actor_limit_reason(self.actor)

    def settle_output(self, timeout_s: float) -> None:
        """The worker relays the log on its own; the participant's copy is cut at "ready"."""

    def kill(self) -> None:
        """TERM the process on its node first, so its last log lines still come back."""
        import ray

        self._killed = True
        if self.actor is None:  # still waiting for a node: the wait ends with nothing started
            self._ended.wait(KILL_DRAIN_S)
            self._end(-9)
            return
        try:
            ray.get(self.actor.terminate.remote(), timeout=CALL_TIMEOUT_S)
        except Exception:
            pass
        if self._ended.wait(KILL_DRAIN_S):
            return
        try:
            ray.kill(self.actor)
        except Exception:
            pass
        self._end(-9)


def actor_limit_reason(actor: Any) -> str | None:
    import ray

    try:
        return ray.get(actor.limit_reason.remote(), timeout=CALL_TIMEOUT_S)
    except Exception:
        return None


def finish_actor(actor: Any) -> None:
    """Remove the run's files on its node, then the actor."""
    import ray

    try:
        ray.get(actor.cleanup.remote(), timeout=CALL_TIMEOUT_S)
    except Exception:
        pass
    try:
        ray.kill(actor)
    except Exception:
        pass


def close_socket(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_TERMINAL_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def first_line(exc: BaseException) -> str:
    """One line that says what went wrong: a task's own error, not Ray's wrapper around
    it (whose first line only names the actor's method, in terminal colours)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        text = _TERMINAL_COLOURS.sub("", str(cause)).strip().splitlines()
        return f"{type(cause).__name__}: {text[0] if text else ''}".rstrip(": ")[:300]
    text = _TERMINAL_COLOURS.sub("", str(exc)).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
