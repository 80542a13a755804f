"""Sessions as child processes of the server, at most ``max_concurrent`` at a time.

Each running session has one worker thread that starts the process and waits for it.
The child asks the kernel to kill it when that thread's process dies
(``PR_SET_PDEATHSIG``), so a server that is killed leaves no orphan training jobs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from nsml.runners import sandbox
from nsml.runners.base import EvaluationProcess, Outcome, Runner, RunnerEvents, RunSpec
from nsml.runners.environments import EnvironmentFailed, declared_requirements, ensure_environment
from nsml.store.entities import SessionStatus

_PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 5.0


def _die_with_parent() -> Callable[[], None] | None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not Linux: children may outlive a killed server
        return None

    def _set() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return _set


class LocalRunner(Runner):
    """Runs sessions here; with ``sandboxed`` each process runs under bubblewrap.

    A scheduler starts queued sessions in order as slots (``max_concurrent``) and GPUs
    free up; a session that asks for more GPUs than are free waits, and later sessions
    that fit may start before it.
    """

    def __init__(
        self,
        max_concurrent: int,
        sandboxed: bool = False,
        hidden: tuple[Path, ...] = (),
        gpus: tuple[str, ...] = (),
        environments: Path | None = None,
    ) -> None:
        self.sandboxed = sandboxed
        self.environments = environments  # where per-requirements virtual environments live
        self.hidden = hidden
        self.max_concurrent = max(1, max_concurrent)
        self.gpus = gpus
        self._free_gpus = list(gpus)
        self._pending: list[RunSpec] = []
        self._waiting_for_gpus: set[int] = set()
        self._lock = threading.Lock()
        self._running: dict[int, subprocess.Popen[bytes] | None] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._stop_requested: set[int] = set()
        self._events: RunnerEvents | None = None
        self._closing = False

    def start(self, events: RunnerEvents) -> None:
        self._events = events

    def submit(self, spec: RunSpec) -> None:
        with self._lock:
            self._pending.append(spec)
            self._schedule()

    def stop(self, session_id: int) -> bool:
        with self._lock:
            for spec in self._pending:
                if spec.session_id == session_id:
                    self._pending.remove(spec)
                    return False
            if session_id not in self._running:
                return False
            self._stop_requested.add(session_id)
            process = self._running[session_id]
        if process is not None:
            _terminate(process)
        return True

    def shutdown(self, reason: str) -> None:
        with self._lock:
            self._closing = True
            self._pending.clear()
            running = [p for p in self._running.values() if p is not None]
            threads = list(self._threads.values())
        for process in running:
            _terminate(process)
        for thread in threads:
            thread.join(timeout=STOP_GRACE_S + 2)

    # scheduling ----------------------------------------------------------------------
    def _schedule(self) -> None:
        """Start what fits; called with the lock held."""
        if self._closing or self._events is None:
            return
        for spec in list(self._pending):
            if len(self._running) >= self.max_concurrent:
                break
            if spec.gpus > len(self._free_gpus):
                if spec.session_id not in self._waiting_for_gpus:
                    self._waiting_for_gpus.add(spec.session_id)
                    threading.Thread(
                        target=self._events.on_waiting,
                        args=(spec.session_id, f"No machine available: waiting for {spec.gpus} free GPUs"),
                        daemon=True,
                    ).start()
                continue
            self._pending.remove(spec)
            self._waiting_for_gpus.discard(spec.session_id)
            allocated = [self._free_gpus.pop(0) for _ in range(spec.gpus)]
            self._running[spec.session_id] = None
            thread = threading.Thread(
                target=self._run_and_release,
                args=(spec, allocated),
                name=f"nsml-session-{spec.session_id}",
                daemon=True,
            )
            self._threads[spec.session_id] = thread
            thread.start()

    def _run_and_release(self, spec: RunSpec, gpus: list[str]) -> None:
        assert self._events is not None
        try:
            self._run(spec, self._events, gpus)
        finally:
            with self._lock:
                self._running.pop(spec.session_id, None)
                self._threads.pop(spec.session_id, None)
                self._free_gpus.extend(gpus)
                self._schedule()

    def _command(self, spec: RunSpec, extra_env: dict[str, str]) -> tuple[list[str], dict[str, str], Path]:
        """argv, environment and cwd of the process, sandboxed or not."""
        env = {"CUDA_VISIBLE_DEVICES": "", **spec.env, **extra_env}
        env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        if not self.sandboxed:
            host_env = {k: v for k, v in os.environ.items() if not k.startswith("NSML_")}
            if spec.train_dir is not None:
                data = spec.work_dir.parent / "data"
                data.mkdir(exist_ok=True)
                if not (data / "train").exists():
                    (data / "train").symlink_to(spec.train_dir)
                env["NSML_DATASET_PATH"] = str(data)
            if spec.checkpoint_dir is not None:
                env["NSML_CHECKPOINT_PATH"] = str(spec.checkpoint_dir)
            if spec.api_url:
                env["NSML_API_URL"] = spec.api_url
            return spec.argv, {**host_env, **env}, spec.work_dir
        mounts = sandbox.Mounts(work=spec.work_dir)
        for folder in spec.extra_mounts:  # read-only at the same path, e.g. the session's venv
            mounts.extra.append(sandbox.Mount(folder, str(folder)))
        if spec.train_dir is not None:
            mounts.extra.append(sandbox.Mount(spec.train_dir, f"{sandbox.DATA}/train"))
            env["NSML_DATASET_PATH"] = sandbox.DATA
        if spec.checkpoint_dir is not None:
            mounts.extra.append(sandbox.Mount(spec.checkpoint_dir, sandbox.CHECKPOINT))
            env["NSML_CHECKPOINT_PATH"] = sandbox.CHECKPOINT
        if spec.api_socket is not None:
            mounts.extra.append(sandbox.Mount(spec.api_socket, sandbox.API_SOCKET, writable=True))
            env["NSML_API_SOCKET"] = sandbox.API_SOCKET
            env["NSML_API_URL"] = "http://nsml"
        env.update(HOME=sandbox.WORK, PATH="/usr/local/bin:/usr/bin:/bin", LANG="C.UTF-8")
        gpus = [g for g in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
        argv = sandbox.wrap(spec.argv, mounts, env, self.hidden, gpus)
        return argv, {"PATH": os.environ.get("PATH", "")}, spec.work_dir

    def _spawn(
        self, spec: RunSpec, log: BinaryIO, extra_env: dict[str, str], pass_fds: tuple[int, ...] = ()
    ) -> subprocess.Popen[bytes]:
        argv, env, cwd = self._command(spec, extra_env)
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
            pass_fds=pass_fds,
        )

    def start_evaluation(self, spec: RunSpec) -> EvaluationProcess:
        ours, theirs = socket.socketpair()
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with spec.log_path.open("ab", buffering=0) as log:
                spec = self._with_environment(spec, log)
                process = self._spawn(spec, log, {"NSML_EVAL_FD": str(theirs.fileno())}, (theirs.fileno(),))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return _LocalEvaluation(process, ours)

    def _with_environment(self, spec: RunSpec, log: BinaryIO) -> RunSpec:
        """The spec with the session's own Python when its source declares requirements."""
        requirements = declared_requirements(spec.work_dir)  # raises EnvironmentFailed
        if requirements is None or self.environments is None:
            return spec
        env = ensure_environment(requirements, self.environments, log)
        python = str(env / "bin" / "python")
        return replace(spec, argv=[python, *spec.argv[1:]], extra_mounts=(*spec.extra_mounts, env))

    def _run(self, spec: RunSpec, events: RunnerEvents, gpus: list[str]) -> None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        devices = {"CUDA_VISIBLE_DEVICES": ",".join(gpus), "NSML_GPU_NUM": str(len(gpus))}
        with spec.log_path.open("ab", buffering=0) as log:
            try:
                spec = self._with_environment(spec, log)
            except (EnvironmentFailed, OSError, subprocess.CalledProcessError) as exc:
                log.write(f"[nsml] {exc}\n".encode())
                events.on_finished(spec.session_id, Outcome(SessionStatus.FAILED, None, str(exc)[:2000]))
                return
            try:
                process = self._spawn(spec, log, devices)
            except OSError as exc:
                log.write(f"[nsml] could not start the session: {exc}\n".encode())
                events.on_finished(spec.session_id, Outcome(SessionStatus.FAILED, None, str(exc)))
                return
            with self._lock:
                self._running[spec.session_id] = process
                stop_now = spec.session_id in self._stop_requested  # stopped while starting
            if stop_now:
                _terminate(process)
            events.on_started(spec.session_id)
            code = process.wait()
            with self._lock:
                self._running.pop(spec.session_id, None)
                stopped = spec.session_id in self._stop_requested
                self._stop_requested.discard(spec.session_id)
        events.on_finished(spec.session_id, _outcome(code, stopped, self._closing))


def _outcome(code: int, stopped: bool, closing: bool) -> Outcome:
    if stopped:
        return Outcome(SessionStatus.STOPPED, code, "stopped by request")
    if closing:
        return Outcome(SessionStatus.FAILED, code, "the server shut down while the session ran")
    if code == 0:
        return Outcome(SessionStatus.EXITED, 0)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return Outcome(SessionStatus.FAILED, code, f"killed by signal {name}")
    return Outcome(SessionStatus.FAILED, code, f"exit code {code}")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the session's process group now, SIGKILL it if it outlives the grace period.

    Returns at once: the caller is often an HTTP request handler.
    """
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def _kill_if_alive() -> None:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    timer = threading.Timer(STOP_GRACE_S, _kill_if_alive)
    timer.daemon = True
    timer.start()


class _LocalEvaluation:
    """An evaluation process of this host and the platform's end of its channel."""

    def __init__(self, process: subprocess.Popen[bytes], channel: socket.socket) -> None:
        self.process = process
        self.channel = channel

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
