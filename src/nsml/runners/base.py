"""The runner interface."""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from nsml.runners.limits import Limits
from nsml.store.entities import SessionStatus


@dataclass(frozen=True)
class RunSpec:
    """One process to run for a session: a training run or an evaluation.

    Paths are the platform's; the runner decides how the process sees them (as they
    are, or mounted into a sandbox) and sets ``NSML_DATASET_PATH`` and the API address.
    """

    session_id: int
    name: str
    argv: list[str]  # [python, entry, *args], relative to work_dir
    work_dir: Path  # the shipped source; the process's writable working directory
    env: dict[str, str]  # platform variables (NSML_SESSION, tokens, ...)
    log_path: Path
    train_dir: Path | None = None  # the dataset's train split, read-only
    dataset_url: str | None = None  # train_dir as tar.gz from the server, for hosts without its disk
    checkpoint_dir: Path | None = None  # a checkpoint to load, read-only
    api_url: str | None = None
    api_socket: Path | None = None
    gpus: int = 0
    cpus: int = 0  # asked for; 0: the runner's default
    extra_mounts: tuple[Path, ...] = ()  # more read-only folders the process needs
    cache_dir: Path | None = None  # the owner's nsml.cache archives, read-only, where they exist
    owner: str = ""  # the account it counts against for fair share; "": the first part of name
    limits: Limits = Limits()  # enforced by whichever host runs it
    # the source as shipped (code.tar.gz), which the process cannot write: requirements are
    # read from here, never from work_dir, where a link could point at a server file
    source_archive: Path | None = None
    requirements: tuple[str, ...] | None = None  # already read from source_archive (Ray workers)


@dataclass(frozen=True)
class Outcome:
    status: SessionStatus
    exit_code: int | None
    reason: str | None = None


class RunnerEvents(Protocol):
    def on_waiting(self, session_id: int, reason: str | None) -> None:
        """A queued session cannot start yet, for ``reason`` (shown in ``ps``); None: the
        reason given before no longer holds (it only waits for a free slot)."""

    def on_started(self, session_id: int) -> None: ...

    def on_finished(self, session_id: int, outcome: Outcome) -> None: ...


class EvaluationProcess(Protocol):
    """A running evaluation: the platform talks to ``nsml.paused`` over ``channel``."""

    channel: socket.socket

    def wait(self, timeout: float | None) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""

    def kill(self) -> None: ...

    def limit_reason(self) -> str | None:
        """``killed: memory limit 512 MiB exceeded`` when a limit ended it, else None."""

    def settle_output(self, timeout_s: float) -> None:
        """Wait, at most ``timeout_s``, until what the script has printed so far is in its
        log, so the participant's copy frozen before the test inputs go out holds it all."""


class Runner(ABC):
    sandboxed: bool = False

    @abstractmethod
    def start(self, events: RunnerEvents) -> None:
        """Begin accepting work; events arrive on the runner's own threads."""

    @abstractmethod
    def submit(self, spec: RunSpec) -> None:
        """Queue a session; it starts when a slot is free."""

    @abstractmethod
    def stop(self, session_id: int) -> bool:
        """Stop a queued or running session; False when the runner does not know it."""

    @abstractmethod
    def start_evaluation(self, spec: RunSpec) -> EvaluationProcess:
        """Start an evaluation process now, connected to the caller by a channel."""

    @abstractmethod
    def stop_starting(self) -> None:
        """The server is going down: start no queued session from now on, even if a slot
        frees (they stay queued in the store and start with the next server).

        Called from a signal handler, before the HTTP server stops answering: sessions
        that end in that window must not hand their slot to a session the shutdown kills."""

    def queue_position(self, session_id: int) -> int | None:
        """Where a queued session stands (1: first in line), or None when it is not waiting."""
        return None

    def cpu_seconds(self, session_id: int) -> float | None:
        """CPU time a running session used so far, for idle detection; None where the
        runner cannot tell (such a session is never flagged idle)."""
        return None

    def gpus_per_machine(self) -> int:
        """The most GPUs one session can get: more could never start."""
        return 0

    def cpus_per_machine(self) -> int:
        """The most CPUs one session can ask for: more could never start."""
        return os.cpu_count() or 1

    @abstractmethod
    def shutdown(self, reason: str) -> None:
        """Stop everything, reporting each unfinished session as failed with ``reason``."""
