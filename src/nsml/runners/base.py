"""The runner interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from nsml.store.entities import SessionStatus


@dataclass(frozen=True)
class RunSpec:
    """Everything a backend needs to run one session's process."""

    session_id: int
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log_path: Path
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    status: SessionStatus
    exit_code: int | None
    reason: str | None = None


class RunnerEvents(Protocol):
    def on_started(self, session_id: int) -> None: ...

    def on_finished(self, session_id: int, outcome: Outcome) -> None: ...


class Runner(ABC):
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
    def shutdown(self, reason: str) -> None:
        """Stop everything, reporting each unfinished session as failed with ``reason``."""
