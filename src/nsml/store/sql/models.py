"""Tables. Every schema change ships as an Alembic migration in ``migrations/versions``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    """An account: a person (``kind='user'``) or a team, which owns sessions like a person.

    Users and teams share one namespace, since both appear as OWNER in session names.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(8), default="user", server_default="user")
    role: Mapped[str] = mapped_column(String(16), default="participant", server_default="participant")
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", name="fk_users_team_id"), nullable=True
    )
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    credits: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    daily_credits: Mapped[float | None] = mapped_column(Float, nullable=True)
    topped_up_on: Mapped[str | None] = mapped_column(String(10), nullable=True)  # UTC date
    storage_quota_mb: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the default
    webhook_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)  # nsml notify


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InviteRow(Base):
    """A code that lets people register themselves with a given role."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    metric: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    train_size: Mapped[int] = mapped_column(Integer)
    test_size: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    public_fraction: Mapped[float] = mapped_column(Float, default=0.5, server_default="0.5")
    daily_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    eval_timeout_s: Mapped[int] = mapped_column(Integer, default=600, server_default="600")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    round_public: Mapped[int | None] = mapped_column(Integer, nullable=True)  # decimals shown
    rules: Mapped[str] = mapped_column(Text, default="", server_default="")  # Markdown
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # a removed dataset keeps its row (and name) so its sessions stay listable
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    max_selected: Mapped[int] = mapped_column(Integer, default=2, server_default="2")  # final picks
    # raised in the same transaction as every change of what the board shows, so a
    # server's cached board is checked against any server's writes by reading this row
    board_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SessionCounterRow(Base):
    """The last session number per (owner, dataset): numbers are never reused after rm."""

    __tablename__ = "session_counters"

    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer)


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("owner_id", "dataset_id", "number", name="uq_session_number"),
        Index("ix_sessions_status", "status"),
        Index("ix_sessions_driver", "driver"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    number: Mapped[int] = mapped_column(Integer)
    entry: Mapped[str] = mapped_column(String(255))
    args: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    cpus: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    memory_mb: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    shm_mb: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    last_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    parent: Mapped[str | None] = mapped_column(String(200), nullable=True)  # "OWNER/DATASET/N:CKPT"
    resume_checkpoint: Mapped[str | None] = mapped_column(String(128), nullable=True)
    charged_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    driver: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the server running it
    # a stop asked through another server, for the driver's lease loop to carry out
    stop_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_session_key_step", "session_id", "key", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    scope: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReportBatchRow(Base):
    """A report batch stored, by the id the SDK gave it: one sent again is stored once."""

    __tablename__ = "report_batches"

    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("session_id", "name", name="uq_checkpoint_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    elapsed_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    size_bytes: Mapped[int] = mapped_column(Integer)


class SubmissionRow(Base):
    """A scored (or failed) evaluation of a checkpoint on a dataset's hidden test set.

    Kept forever, also after the session is removed (``session_name`` stays).
    """

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_dataset_owner", "dataset_id", "owner_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True
    )
    session_name: Mapped[str] = mapped_column(String(200))
    checkpoint: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    public_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    private_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # when the test inputs went to the participant's code: from then on a failure counts
    inputs_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # an organiser's reference entry: shown on the board where its score places it, unranked
    baseline: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    phase_id: Mapped[int | None] = mapped_column(
        ForeignKey("phases.id", ondelete="SET NULL", name="fk_submissions_phase_id"), nullable=True
    )
    selected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the submission of the previous phase this one re-scores (free: not counted in limits)
    carried_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # earlier scores, replaced by re-runs: [{public_score, private_score, scored_at, reason}]
    score_history: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    driver: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the server evaluating it


class ServerRow(Base):
    """An API server on this database and its lease; see ``services/server_leases.py``."""

    __tablename__ = "servers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), default="", server_default="")
    host: Mapped[str] = mapped_column(String(255), default="", server_default="")
    pid: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    taken_over_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    taken_over_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PhaseRow(Base):
    """A round of a competition, with its own hidden test set, limits, dates and board."""

    __tablename__ = "phases"
    __table_args__ = (UniqueConstraint("dataset_id", "name", name="uq_phase_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    index: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    blind: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    daily_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    test_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CacheEntryRow(Base):
    """A stored ``nsml.cache`` result, shared by all sessions of its owner."""

    __tablename__ = "cache_entries"
    __table_args__ = (UniqueConstraint("owner_id", "key", name="uq_cache_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(64))
    function: Mapped[str] = mapped_column(String(255))
    dataset: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    hits: Mapped[int] = mapped_column(Integer, default=0)


class SharedResourceRow(Base):
    """A published folder readable by everyone; ``version`` names its current archive."""

    __tablename__ = "shared_resources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    description: Mapped[str] = mapped_column(String(255), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CreditEventRow(Base):
    """Every change of a balance, for the record: grants, daily top-ups, session charges."""

    __tablename__ = "credit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    delta: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
