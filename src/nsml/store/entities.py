"""Plain records the store hands out, so that callers never hold database objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any


class SessionStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    EXITED = "exited"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_terminal(self) -> bool:
        return self in (SessionStatus.EXITED, SessionStatus.FAILED, SessionStatus.STOPPED)


ACTIVE_STATUSES = (SessionStatus.QUEUED, SessionStatus.RUNNING)


class Role(str, Enum):
    PARTICIPANT = "participant"
    ORGANISER = "organiser"
    ADMIN = "admin"


@dataclass(frozen=True)
class User:
    """An account: a person, or a team (``kind == "team"``) that owns sessions."""

    id: int
    name: str
    created_at: datetime
    kind: str = "user"
    role: Role = Role.PARTICIPANT
    team: str | None = None  # the team a person belongs to
    disabled: bool = False
    password_hash: str | None = field(default=None, repr=False, compare=False)
    credits: float = field(default=0.0, compare=False)
    daily_credits: float | None = field(default=None, compare=False)
    storage_quota_mb: int | None = field(default=None, compare=False)  # None: the server's default
    # where the server POSTs notifications (nsml notify); may hold a secret, so never in repr
    webhook_url: str | None = field(default=None, repr=False, compare=False)

    @property
    def owner_name(self) -> str:
        """Whose name goes into new sessions: the team's, for a team member."""
        return self.team or self.name


@dataclass(frozen=True)
class Dataset:
    id: int
    name: str
    owner: str
    metric: str
    description: str
    train_size: int
    test_size: int
    size_bytes: int
    created_at: datetime
    public_fraction: float = 0.5
    daily_limit: int | None = None
    total_limit: int | None = None
    eval_timeout_s: int = 600
    closed_at: datetime | None = None
    round_public: int | None = None  # decimals of public scores shown to participants
    rules: str = ""  # Markdown, like the description
    deadline: datetime | None = None
    version: int = 1  # raised by every push --replace
    removed_at: datetime | None = None
    max_selected: int = 2  # submissions each participant picks for the private ranking
    board_version: int = 0  # raised by every change of what its board shows

    @property
    def closed(self) -> bool:
        """Closed by its organiser, or past its deadline: either way the board then ranks
        by private score and no submission is taken."""
        if self.closed_at is not None:
            return True
        return self.deadline is not None and datetime.now(timezone.utc) >= self.deadline


@dataclass(frozen=True)
class Session:
    id: int
    owner: str
    dataset: str
    number: int
    entry: str
    args: list[str]
    description: str
    status: SessionStatus
    exit_code: int | None
    reason: str | None
    gpus: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    summary: dict[str, Any] | None
    last_report: dict[str, Any] | None = field(default=None, repr=False)
    parent: str | None = None  # "OWNER/DATASET/N:CHECKPOINT" this session was forked from
    resume_checkpoint: str | None = None  # "OWNER/DATASET/N:CHECKPOINT" loaded at start
    cpus: int = 0  # CPUs asked for; 0: the runner's default
    memory_mb: int = 0  # memory asked for (nsml run --memory); 0: the server's default
    shm_mb: int = 0  # /dev/shm asked for (nsml run --shm-size); 0: the server's default
    driver: str | None = None  # the id of the server running it (None: from before leases)

    @property
    def name(self) -> str:
        return f"{self.owner}/{self.dataset}/{self.number}"


@dataclass(frozen=True)
class Checkpoint:
    session_id: int
    name: str
    created_at: datetime
    elapsed_s: float | None
    summary: dict[str, Any] | None
    size_bytes: int


@dataclass(frozen=True)
class MetricPoint:
    step: int
    key: str
    value: float | None
    scope: str | None
    created_at: datetime


class SubmissionStatus(str, Enum):
    QUEUED = "queued"  # waiting for an evaluation slot (fair share); the reason says why
    RUNNING = "running"
    SCORED = "scored"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by its owner; counts against the limits only if the inputs went out


@dataclass(frozen=True)
class Submission:
    id: int
    dataset: str
    owner: str
    session_name: str
    checkpoint: str
    status: SubmissionStatus
    reason: str | None
    public_score: float | None
    private_score: float | None
    progress: int
    total: int
    created_at: datetime
    finished_at: datetime | None
    inputs_sent_at: datetime | None = None  # a failure after this counts against the limits
    baseline: bool = False  # the organiser's reference entry: on the board, never ranked
    phase: str | None = None  # the competition phase it was scored in (None: no phases)
    phase_id: int | None = None
    selected: bool = False  # picked by its owner for the private ranking
    carried_from: int | None = None  # re-scores this submission of the previous phase
    # earlier scores that re-runs replaced: {public_score, private_score, scored_at, reason}
    score_history: list[dict[str, Any]] = field(default_factory=list)
    driver: str | None = None  # the id of the server evaluating it


@dataclass(frozen=True)
class Phase:
    """A round of a competition: its own hidden test set, limits, dates and board.

    ``started_at`` is set once it became the current phase (by the organiser, or when
    ``starts_at`` passed); the current phase is the last one started."""

    id: int
    dataset: str
    name: str
    index: int
    starts_at: datetime | None
    ends_at: datetime | None
    started_at: datetime | None
    blind: bool
    daily_limit: int | None
    total_limit: int | None
    test_size: int
    created_at: datetime


@dataclass(frozen=True)
class CacheEntry:
    owner: str
    key: str
    function: str
    dataset: str | None
    size_bytes: int
    created_at: datetime
    last_used_at: datetime
    hits: int


@dataclass(frozen=True)
class SharedResource:
    """A folder an organiser published under a name, readable by every account and session.

    ``version`` names the stored archive; a replace writes a new one and switches the
    record to it in one statement, so readers get the old files or the new, never a mix.
    """

    name: str
    owner: str
    description: str
    size_bytes: int
    files: int
    version: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CreditEvent:
    delta: float
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class Server:
    """An API server on the shared database. Its lease says it is alive: a server whose
    lease ran out is taken over by a live one, which ends or re-queues its work."""

    id: str
    url: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    lease_expires_at: datetime
    stopped_at: datetime | None = None  # it shut down and let go of its lease
    taken_over_by: str | None = None  # the server that took over its work
    taken_over_at: datetime | None = None

    def state(self, now: datetime) -> str:
        """live; stopped (it shut down cleanly); taken over (it stopped answering and a
        live server took its work); expired (stopped answering, not yet taken over)."""
        if self.stopped_at is not None:
            return "stopped"
        if self.taken_over_by is not None:
            return "taken over"
        return "live" if self.lease_expires_at > now else "expired"
