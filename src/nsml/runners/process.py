"""Starting one session process on this host, sandboxed or not.

Shared by the local runner and by the Ray runner's workers, so that a session sees the
same paths, variables and sandbox wherever it runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from nsml.runners import cgroups, sandbox
from nsml.runners.base import Outcome, RunSpec
from nsml.runners.confined import RunProcess, child_setup
from nsml.runners.environments import ensure_environment, spec_requirements
from nsml.store.entities import SessionStatus

STOP_GRACE_S = 5.0


class ProcessLauncher:
    """How a :class:`RunSpec` becomes a process: paths, variables, sandbox, environment."""

    def __init__(
        self, sandboxed: bool, hidden: tuple[Path, ...] = (), environments: Path | None = None
    ) -> None:
        self.sandboxed = sandboxed
        self.hidden = hidden
        self.environments = environments  # where per-requirements virtual environments live

    def command(self, spec: RunSpec, extra_env: dict[str, str]) -> tuple[list[str], dict[str, str], Path]:
        """argv, environment and cwd of the process, sandboxed or not."""
        env = {"CUDA_VISIBLE_DEVICES": "", **spec.env, **extra_env}
        env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        # nsml.cache hits are read straight from the owner's entries when this host has them
        # (a worker on another machine does not: its sessions fetch entries over HTTP)
        shared_cache = spec.cache_dir if spec.cache_dir is not None and spec.cache_dir.is_dir() else None
        if not self.sandboxed:
            # never the platform's settings nor the object store's credentials
            host_env = {k: v for k, v in os.environ.items() if not k.startswith(("NSML_", "AWS_"))}
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
            if shared_cache is not None:
                env["NSML_CACHE_DIR"] = str(shared_cache)
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
        if shared_cache is not None:  # read-only: a session cannot alter a stored entry
            mounts.extra.append(sandbox.Mount(shared_cache, sandbox.CACHE))
            env["NSML_CACHE_DIR"] = sandbox.CACHE
        env.update(HOME=sandbox.WORK, PATH="/usr/local/bin:/usr/bin:/bin", LANG="C.UTF-8")
        if os.environ.get("PYTHONPATH"):  # the platform's own import path (bound read-only above)
            env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
        gpus = [g for g in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
        argv = sandbox.wrap(spec.argv, mounts, env, self.hidden, gpus, spec.limits)
        return argv, {"PATH": os.environ.get("PATH", "")}, spec.work_dir

    def spawn(self, spec: RunSpec, extra_env: dict[str, str], pass_fds: tuple[int, ...] = ()) -> RunProcess:
        """Start the run in its own control groups, its output piped into its capped log."""
        argv, env, cwd = self.command(spec, extra_env)
        enforcer = cgroups.enforcer()
        confinement = enforcer.confine(spec.limits)
        reader, writer = os.pipe()
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=writer,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=child_setup(
                    confinement.join_files if confinement else [], enforcer.rlimits(spec.limits)
                ),
                pass_fds=pass_fds,
            )
        except BaseException:
            os.close(reader)
            if confinement is not None:
                confinement.remove()
            raise
        finally:
            os.close(writer)
        return RunProcess(process, confinement, reader, spec.log_path, spec.limits, spec.work_dir)

    def with_environment(self, spec: RunSpec, log: BinaryIO) -> RunSpec:
        """The spec with the session's own Python when its source declares requirements."""
        requirements = spec_requirements(spec)  # from the shipped archive; raises EnvironmentFailed
        if requirements is None or self.environments is None:
            return spec
        env = ensure_environment(requirements, self.environments, log)
        python = str(env / "bin" / "python")
        return replace(spec, argv=[python, *spec.argv[1:]], extra_mounts=(*spec.extra_mounts, env))


def outcome(code: int, stopped: bool, closing: bool, limit: str | None = None) -> Outcome:
    """How a run ended; ``limit`` says which limit killed it, when one did."""
    if stopped:
        return Outcome(SessionStatus.STOPPED, code, "stopped by request")
    if closing:
        return Outcome(SessionStatus.FAILED, code, "the server shut down while the session ran")
    if limit is not None:
        return Outcome(SessionStatus.FAILED, code, limit)
    if code == 0:
        return Outcome(SessionStatus.EXITED, 0)
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return Outcome(SessionStatus.FAILED, code, f"killed by signal {name}")
    return Outcome(SessionStatus.FAILED, code, f"exit code {code}")


def terminate(process: RunProcess) -> None:
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
