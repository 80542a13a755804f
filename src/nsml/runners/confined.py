"""A started run under its limits: the process, its control groups, its log and disk watch.

The run's output goes through a pipe that the server drains into the log, so a run that
prints without end fills at most its log cap (then one line says the rest was cut), and
its work dir is measured every few seconds against its disk quota. Once the process has
ended, whatever it left running is killed and its control groups are removed.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import resource
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nsml.runners.cgroups import Confinement
from nsml.runners.cputime import process_tree_cpu
from nsml.runners.limits import Limits
from nsml.sizes import format_size

_PR_SET_PDEATHSIG = 1
DISK_CHECK_S = 2.0
_PUMP_CHUNK = 64 * 1024
# after the run's processes are gone its log pipe ends at once, unless a process outside
# its groups still holds it: wait this long for the end, and longer while output still flows
# (a starved server thread may be behind by more than a pipe's worth)
_PUMP_DRAIN_S = 10.0
_PUMP_DRAIN_MAX_S = 120.0


def child_setup(join_files: list[bytes], rlimits: list[tuple[int, int]]) -> Callable[[], None]:
    """What the child does between fork and exec: die with the server's thread, join its
    control groups, set its rlimits. Only system calls, nothing that takes a lock."""
    rlimits = [(kind, min(value, _hard(kind))) for kind, value in rlimits]
    try:
        libc: ctypes.CDLL | None = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not Linux: children may outlive a killed server
        libc = None

    def _setup() -> None:
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        for path in join_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        for kind, value in rlimits:
            resource.setrlimit(kind, (value, value))

    return _setup


def _hard(kind: int) -> int:
    hard = resource.getrlimit(kind)[1]
    return hard if hard != resource.RLIM_INFINITY else 2**63 - 1


def dir_usage(folder: Path) -> int:
    """Bytes on disk under ``folder``, links not followed."""
    total = 0
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += info.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return total


class RunProcess:
    """Behaves like the ``Popen`` it wraps (``pid``, ``poll``, ``wait``) and cleans up after
    it the first time it is seen to have ended."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        confinement: Confinement | None,
        output: int,
        log_path: Path,
        limits: Limits,
        work_dir: Path,
    ) -> None:
        self.process = process
        self.pid = process.pid
        self.confinement = confinement
        self.limits = limits
        self.work_dir = work_dir
        self._limit_hit: str | None = None
        self._oom_killed = False
        self._ended = threading.Event()
        self._finished = False
        self._lock = threading.Lock()
        self._pumped = 0  # bytes read from the pipe so far
        self._logged = 0  # of those, bytes written to the log (or discarded past its cap)
        self._output = output
        self._pump = threading.Thread(
            target=self._copy_output, args=(output, log_path), name=f"nsml-log-{self.pid}", daemon=True
        )
        self._pump.start()
        if limits.disk_bytes:
            threading.Thread(target=self._watch_disk, name=f"nsml-disk-{self.pid}", daemon=True).start()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self._finish()
        return code

    def wait(self, timeout: float | None = None) -> int:
        code = self.process.wait(timeout)  # raises TimeoutExpired as Popen does
        self._finish()
        return code

    def limit_reason(self) -> str | None:
        """``killed: memory limit 512 MiB exceeded`` when a limit ended the run."""
        if self._limit_hit is not None:
            return self._limit_hit
        if self.process.returncode == -signal.SIGXFSZ:  # a file grew past RLIMIT_FSIZE
            return f"killed: disk quota {format_size(self.limits.disk_bytes)} exceeded by one file"
        if self._oom_killed or (self.confinement is not None and self.confinement.oom_killed()):
            return f"killed: memory limit {format_size(self.limits.memory_bytes)} exceeded"
        return None

    def cpu_seconds(self) -> float | None:
        """CPU time the run used so far (its control group's count, else its process
        tree's); None once it ended or where neither can be read."""
        if self._finished:
            return None
        if self.confinement is not None:
            used = self.confinement.cpu_seconds()
            if used is not None:
                return used
        return process_tree_cpu(self.pid)

    def kill(self) -> None:
        """SIGKILL everything of the run now."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.confinement is not None:
            self.confinement.kill_all()

    # after the end ----------------------------------------------------------------------
    def _finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self._ended.set()
        if self.confinement is not None:
            self.confinement.kill_all()  # daemons the run forked hold the log pipe open
        else:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._drain_output()
        if self.confinement is not None:
            self._oom_killed = self.confinement.oom_killed()  # read before the group goes
            self.confinement.remove()

    def _drain_output(self) -> None:
        """Let the pump write the last of the output before the run's end is logged."""
        deadline = time.monotonic() + _PUMP_DRAIN_MAX_S
        seen = -1
        while self._pump.is_alive() and self._pumped != seen and time.monotonic() < deadline:
            seen = self._pumped
            self._pump.join(timeout=_PUMP_DRAIN_S)

    def _copy_output(self, output: int, log_path: Path) -> None:
        cap = self.limits.log_bytes
        written = 0
        with os.fdopen(output, "rb", buffering=0) as source, log_path.open("ab", buffering=0) as log:
            while chunk := source.read(_PUMP_CHUNK):
                self._pumped += len(chunk)
                if cap and written + len(chunk) > cap:
                    if written < cap:
                        log.write(chunk[: cap - written])
                        log.write(
                            f"\n[nsml] the log reached its limit of {format_size(cap)}; "
                            "the rest of the output is discarded\n".encode()
                        )
                        written = cap
                else:  # past the cap it keeps draining, so the run never blocks on a full pipe
                    log.write(chunk)
                    written += len(chunk)
                self._logged = self._pumped

    def settle_output(self, timeout_s: float) -> None:
        """Wait, at most ``timeout_s``, until the pipe holds nothing unread and the pump has
        logged all it read: what the run printed so far is then in its log."""
        deadline = time.monotonic() + timeout_s
        while self._pump.is_alive() and time.monotonic() < deadline:
            if self._logged == self._pumped and _unread(self._output) == 0:
                return
            time.sleep(0.01)

    def _watch_disk(self) -> None:
        while not self._ended.wait(DISK_CHECK_S):
            if dir_usage(self.work_dir) > self.limits.disk_bytes:
                self._limit_hit = (
                    f"killed: disk quota {format_size(self.limits.disk_bytes)} exceeded in the work dir"
                )
                self.kill()
                return


def _unread(fd: int) -> int:
    """Bytes waiting in a pipe (0 once it is closed)."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return 0
