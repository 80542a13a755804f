"""Sessions as child processes of the server, at most ``max_concurrent`` at a time.

Each running session has one worker thread that starts the process and waits for it.
The child asks the kernel to kill it when that thread's process dies
(``PR_SET_PDEATHSIG``), so a server that is killed leaves no orphan training jobs.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

from nsml.runners.base import EvaluationProcess, Outcome, Runner, RunnerEvents, RunSpec
from nsml.runners.confined import RunProcess
from nsml.runners.environments import EnvironmentFailed
from nsml.runners.fairshare import RunsByOwner, WaitNotices, cap_reason, next_turn, owner_of
from nsml.runners.process import STOP_GRACE_S, ProcessLauncher, outcome, terminate
from nsml.store.entities import SessionStatus


class LocalRunner(Runner):
    """Runs sessions here; with ``sandboxed`` each process runs under bubblewrap.

    A scheduler starts queued sessions as slots (``max_concurrent``) and GPUs free up,
    in fair-share order: the owner with the fewest running first, then the earliest
    queued, and no owner beyond ``max_per_user`` running sessions (0: no cap). A session
    that asks for more GPUs than are free waits, and later sessions that fit may start
    before it.
    """

    def __init__(
        self,
        max_concurrent: int,
        sandboxed: bool = False,
        hidden: tuple[Path, ...] = (),
        gpus: tuple[str, ...] = (),
        environments: Path | None = None,
        max_per_user: int = 0,
    ) -> None:
        self.sandboxed = sandboxed
        self.launcher = ProcessLauncher(sandboxed, hidden, environments)
        self.max_concurrent = max(1, max_concurrent)
        self.gpus = gpus
        self._free_gpus = list(gpus)
        self.max_per_user = max(0, max_per_user)
        self._pending: list[RunSpec] = []  # in the order they were queued
        self._going = RunsByOwner()  # running sessions per owner
        self._notices = WaitNotices()  # why queued sessions wait
        self._lock = threading.Lock()
        self._running: dict[int, RunProcess | None] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._stop_requested: set[int] = set()
        self._events: RunnerEvents | None = None
        self._closing = False

    def gpus_per_machine(self) -> int:
        return len(self.gpus)

    def cpu_seconds(self, session_id: int) -> float | None:
        with self._lock:
            process = self._running.get(session_id)
        return process.cpu_seconds() if process is not None else None

    def start(self, events: RunnerEvents) -> None:
        self._events = events
        self._notices.start(events)

    def submit(self, spec: RunSpec) -> None:
        with self._lock:
            self._pending.append(spec)
            self._schedule()

    def queue_position(self, session_id: int) -> int | None:
        with self._lock:
            for position, spec in enumerate(self._pending, start=1):
                if spec.session_id == session_id:
                    return position
        return None

    def stop(self, session_id: int) -> bool:
        with self._lock:
            for spec in self._pending:
                if spec.session_id == session_id:
                    self._pending.remove(spec)
                    self._notices.forget(session_id)
                    return False
            if session_id not in self._running:
                return False
            self._stop_requested.add(session_id)
            process = self._running[session_id]
        if process is not None:
            terminate(process)
        return True

    def stop_starting(self) -> None:
        self._closing = True  # a plain store, safe in a signal handler; _schedule reads it

    def shutdown(self, reason: str) -> None:
        with self._lock:
            self._closing = True
            self._pending.clear()
            running = [p for p in self._running.values() if p is not None]
            threads = list(self._threads.values())
        for process in running:
            terminate(process)
        for thread in threads:
            thread.join(timeout=STOP_GRACE_S + 2)

    # scheduling ----------------------------------------------------------------------
    def _schedule(self) -> None:
        """Start what fits, in fair-share order (see :mod:`nsml.runners.fairshare`); then
        tell each queued session why it still waits. Called with the lock held."""
        if self._closing or self._events is None:
            return
        while len(self._running) < self.max_concurrent:
            spec = next_turn(self._pending, owner_of, self._going, self.max_per_user, self._fits)
            if spec is None:
                break
            self._start(spec)
        self._explain_waits()

    def _fits(self, spec: RunSpec) -> bool:
        # a resumed session whose last run is still ending waits for it
        return spec.session_id not in self._running and spec.gpus <= len(self._free_gpus)

    def _start(self, spec: RunSpec) -> None:
        self._pending.remove(spec)
        self._notices.forget(spec.session_id)
        allocated = [self._free_gpus.pop(0) for _ in range(spec.gpus)]
        self._running[spec.session_id] = None
        self._going.add(spec.session_id, owner_of(spec))
        thread = threading.Thread(
            target=self._run_and_release,
            args=(spec, allocated),
            name=f"nsml-session-{spec.session_id}",
            daemon=True,
        )
        self._threads[spec.session_id] = thread
        thread.start()

    def _release(self, session_id: int) -> None:
        self._going.remove(session_id)

    def _explain_waits(self) -> None:
        """Tell each queued session why it waits (the notices skip unchanged reasons)."""
        for spec in self._pending:
            going = self._going.get(owner_of(spec), 0)
            reason: str | None = None
            if self.max_per_user and going >= self.max_per_user:
                reason = cap_reason(going, "sessions")
            elif spec.gpus > len(self._free_gpus):
                reason = f"No machine available: waiting for {spec.gpus} free GPUs"
            self._notices.tell(spec.session_id, reason)

    def _run_and_release(self, spec: RunSpec, gpus: list[str]) -> None:
        assert self._events is not None
        try:
            self._run(spec, self._events, gpus)
        finally:
            with self._lock:
                self._running.pop(spec.session_id, None)
                self._threads.pop(spec.session_id, None)
                self._release(spec.session_id)
                self._free_gpus.extend(gpus)
                self._schedule()

    def start_evaluation(self, spec: RunSpec) -> EvaluationProcess:
        ours, theirs = socket.socketpair()
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with spec.log_path.open("ab", buffering=0) as log:
                spec = self.launcher.with_environment(spec, log)
            process = self.launcher.spawn(spec, {"NSML_EVAL_FD": str(theirs.fileno())}, (theirs.fileno(),))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return _LocalEvaluation(process, ours)

    def _run(self, spec: RunSpec, events: RunnerEvents, gpus: list[str]) -> None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        devices = {"CUDA_VISIBLE_DEVICES": ",".join(gpus), "NSML_GPU_NUM": str(len(gpus))}
        with spec.log_path.open("ab", buffering=0) as log:
            try:
                spec = self.launcher.with_environment(spec, log)
            except (EnvironmentFailed, OSError, subprocess.CalledProcessError) as exc:
                log.write(f"[nsml] {exc}\n".encode())
                events.on_finished(spec.session_id, Outcome(SessionStatus.FAILED, None, str(exc)[:2000]))
                return
            try:
                process = self.launcher.spawn(spec, devices)
            except OSError as exc:
                log.write(f"[nsml] could not start the session: {exc}\n".encode())
                events.on_finished(spec.session_id, Outcome(SessionStatus.FAILED, None, str(exc)))
                return
            with self._lock:
                self._running[spec.session_id] = process
                stop_now = spec.session_id in self._stop_requested  # stopped while starting
            if stop_now:
                terminate(process)
            events.on_started(spec.session_id)
            code = process.wait()
            with self._lock:
                self._running.pop(spec.session_id, None)
                stopped = spec.session_id in self._stop_requested
                self._stop_requested.discard(spec.session_id)
        events.on_finished(spec.session_id, outcome(code, stopped, self._closing, process.limit_reason()))


class _LocalEvaluation:
    """An evaluation process of this host and the platform's end of its channel."""

    def __init__(self, process: RunProcess, channel: socket.socket) -> None:
        self.process = process
        self.channel = channel

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def limit_reason(self) -> str | None:
        return self.process.limit_reason()

    def settle_output(self, timeout_s: float) -> None:
        self.process.settle_output(timeout_s)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
