"""What runs on a Ray node for one session or evaluation: the ``SessionHost`` actor.

The actor is the session's foothold on its node. It unpacks the shipped source, fetches
the dataset's train split from the server (once per node and dataset version), starts
the process with the same :class:`ProcessLauncher` the local runner uses, and serves
the log, the exit code and, for evaluations, the ``nsml.paused`` channel to the server.
The process talks to the server over HTTP with its session token; in a sandbox, through
a Unix socket that the actor forwards to the server's address.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from nsml.artifacts.safe_io import pack_tree
from nsml.client.api import ApiError
from nsml.client.connection import fetch
from nsml.runners import cgroups
from nsml.runners.base import RunSpec
from nsml.runners.confined import RunProcess
from nsml.runners.limits import Limits
from nsml.runners.process import STOP_GRACE_S, ProcessLauncher
from nsml.runners.sandbox import sandbox_works

LOG_CHUNK = 1 << 20
READ_WAIT_S = 1.0


def node_root() -> Path:
    """Where sessions of this node keep their files (``NSML_RAY_WORKDIR`` to choose)."""
    configured = os.environ.get("NSML_RAY_WORKDIR")
    root = Path(configured) if configured else Path(tempfile.gettempdir()) / f"nsml-ray-{os.getuid()}"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


@dataclass
class HostedRun:
    """Everything the server sends for one run; paths are absent, archives travel instead."""

    session_id: int
    name: str
    argv: list[str]
    env: dict[str, str]
    code: bytes  # tar.gz of the shipped source
    checkpoint: bytes | None = None  # tar.gz of a checkpoint to load
    # the train split: (its download URL, what a node's copy is of: server and dataset version)
    dataset: tuple[str, str] | None = None
    api_url: str | None = None
    sandboxed: bool = False
    evaluation: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)  # enforced on the node that runs it
    requirements: tuple[str, ...] | None = None  # read by the server from the shipped archive


def pack_folder(folder: Path) -> bytes:
    """Folders and regular files only: a session's links are neither followed nor shipped."""
    return pack_tree(folder)


def _unpack(data: bytes, target: Path) -> None:
    _unpack_stream(io.BytesIO(data), target)


def _unpack_stream(stream: BinaryIO, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=stream, mode="r:*") as tar:
        tar.extractall(target, filter="data")


class SessionHost:
    """One session or evaluation at a time on this node (a Ray actor; threaded, so polls
    and the channel are served while the process runs).

    The actor is only a warm launcher: each run gets a fresh folder and its own process,
    sandbox and control groups, and :meth:`cleanup` says whether the run left nothing
    behind, so that the server may hand the actor the next run of the same shape
    (:mod:`nsml.runners.ray_pool`) instead of paying a new worker process each time."""

    def __init__(self) -> None:
        self.root = node_root()
        self.runs = 0  # runs started by this actor, shown in each run's log
        self._reset()
        self._lock = threading.Lock()

    def _reset(self) -> None:
        self.folder = self.root / "runs" / uuid.uuid4().hex
        self.process: RunProcess | None = None
        self.channel: socket.socket | None = None
        self.proxy: _UnixToTcp | None = None
        self.log_path = self.folder / "log.txt"
        self._terminated = False

    def ready(self) -> int:
        """Answers once the actor has a node and a process (its pid)."""
        return os.getpid()

    # starting ---------------------------------------------------------------------------
    def start(self, run: HostedRun) -> dict[str, str]:
        """Prepare and start the process; returns where it runs."""
        import ray  # only on a Ray worker

        if self.process is not None or self.folder.exists():
            raise RuntimeError("this Ray actor still holds another run")  # the server's bug, not the run's
        context = ray.get_runtime_context()
        where = {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address()}
        self.runs += 1
        self.folder.mkdir(parents=True)
        with self.log_path.open("ab", buffering=0) as log:
            log.write(
                f"[nsml] on Ray node {where['node_ip']} ({where['node_id'][:12]}), "
                f"launcher {os.getpid()} run {self.runs}\n".encode()
            )
            if run.sandboxed:
                works, why = sandbox_works()
                if not works:
                    raise RuntimeError(f"the sandbox is required but on node {where['node_ip']} {why}")
            _unpack(run.code, self.folder / "work")
            checkpoint_dir = None
            if run.checkpoint is not None:
                checkpoint_dir = self.folder / "checkpoint"
                _unpack(run.checkpoint, checkpoint_dir)
            train_dir = None
            if run.dataset is not None:
                token = run.env.get("NSML_SESSION_TOKEN", "")
                train_dir = self._dataset(*run.dataset, token=token, log=log)
            env = dict(run.env)
            gpu_ids = [str(int(g)) for g in ray.get_gpu_ids()]
            env["NSML_GPU_NUM"] = str(len(gpu_ids))
            api_socket = None
            if run.api_url and run.sandboxed:  # no network in the sandbox: forward a Unix socket
                api_socket = self.folder / "api.sock"
                self.proxy = _UnixToTcp(api_socket, run.api_url)
            spec = RunSpec(
                session_id=run.session_id,
                name=run.name,
                argv=[sys.executable, *run.argv[1:]],  # this node's Python, with nsml installed
                work_dir=self.folder / "work",
                env=env,
                log_path=self.log_path,
                train_dir=train_dir,
                checkpoint_dir=checkpoint_dir,
                api_url=run.api_url,
                api_socket=api_socket,
                gpus=len(gpu_ids),
                limits=run.limits,
                requirements=run.requirements,
            )
            launcher = ProcessLauncher(run.sandboxed, hidden=(self.root,), environments=self.root / "envs")
            spec = launcher.with_environment(spec, log)
            extra = {"CUDA_VISIBLE_DEVICES": ",".join(gpu_ids), **run.extra}
            pass_fds: tuple[int, ...] = ()
            theirs = None
            if run.evaluation:
                self.channel, theirs = socket.socketpair()
                extra["NSML_EVAL_FD"] = str(theirs.fileno())
                pass_fds = (theirs.fileno(),)
            try:
                self.process = launcher.spawn(spec, extra, pass_fds)
            finally:
                if theirs is not None:
                    theirs.close()
        return where

    def _dataset(self, url: str, copy_of: str, token: str, log: io.RawIOBase) -> Path:
        """The train split, downloaded once per node, server and dataset version."""
        key = uuid.uuid5(uuid.NAMESPACE_URL, copy_of).hex
        target = self.root / "datasets" / key
        if (target / "train").is_dir():
            return target / "train"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one download per node, however many sessions wait
            if (target / "train").is_dir():
                return target / "train"
            log.write(b"[nsml] fetching the dataset's train split from the server\n")
            partial = target.parent / f".{key}-{uuid.uuid4().hex}"
            partial.mkdir()
            archive = partial / "train.tar.gz"
            try:
                try:
                    fetch(url, token, archive)
                except ApiError as exc:
                    reason = f"HTTP {exc.status}" if exc.status else exc.detail
                    raise RuntimeError(f"could not fetch the dataset: {reason}") from None
                with archive.open("rb") as stream:
                    _unpack_stream(stream, partial / "train")
                archive.unlink()
                partial.rename(target)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
        return target / "train"

    # while it runs ----------------------------------------------------------------------
    def poll(self, offset: int) -> tuple[bytes, int | None]:
        """Log bytes from ``offset`` (at most 1 MiB) and the exit code once it exited.

        The exit code comes only with the log's last bytes, so nothing is lost."""
        code = self.process.poll() if self.process is not None else None
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                chunk = log.read(LOG_CHUNK)
        except FileNotFoundError:
            chunk = b""
        if code is not None and len(chunk) == LOG_CHUNK:
            code = None  # more log to come before the end
        return chunk, code

    def limit_reason(self) -> str | None:
        """Which limit ended the process, if one did."""
        return self.process.limit_reason() if self.process is not None else None

    def terminate(self) -> None:
        """SIGTERM the process group, SIGKILL after the grace period."""
        process = self.process
        if process is None:
            return
        with self._lock:
            self._terminated = True
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(STOP_GRACE_S)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def write(self, data: bytes) -> None:
        """Bytes from the server to the process's ``nsml.paused`` channel."""
        assert self.channel is not None
        self.channel.sendall(data)

    def read(self) -> bytes | None:
        """Bytes from the channel; b"" once it closed, None when nothing came for a while."""
        assert self.channel is not None
        ready = socket_wait(self.channel, READ_WAIT_S)
        if not ready:
            return None
        try:
            return self.channel.recv(LOG_CHUNK)
        except OSError:
            return b""

    def cleanup(self, last: bool = True) -> bool:
        """End the run and remove its files; whether the actor may take another run.

        It may when the run's process ended on its own, left no process in its control
        groups and its folder is gone. ``last``: the actor ends next, and the control
        groups of its process go with it."""
        process = self.process
        clean = process is not None and not self._terminated and process.poll() is not None
        if process is not None and process.poll() is None:
            self.terminate()
        if process is not None and process.confinement is not None and process.confinement.pids():
            clean = False
        if self.proxy is not None:
            self.proxy.close()
        if self.channel is not None:
            self.channel.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        clean = clean and not self.folder.exists()
        if last:
            cgroups.release()
        else:
            self._reset()
        return clean


def socket_wait(sock: socket.socket, timeout: float) -> bool:
    import select

    readable, _, _ = select.select([sock], [], [], timeout)
    return bool(readable)


class _UnixToTcp:
    """Forwards connections on a Unix socket to the server's HTTP address."""

    def __init__(self, path: Path, url: str) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                inner, _ = self.listener.accept()
            except OSError:
                return
            try:
                outer = socket.create_connection(self.address, timeout=30)
                outer.settimeout(None)
            except OSError:
                inner.close()
                continue
            for source, sink in ((inner, outer), (outer, inner)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(1 << 16):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        source.close()  # each socket is the source of exactly one pump
