"""Sessions: starting, forking and describing them, and what they report and save."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from nsml.schemas.base import DbInt, MetricValue, Record, Request, Timestamp
from nsml.store import SessionStatus


class SessionCreate(Request):
    dataset: str
    entry: str = Field(default="main.py", max_length=255)
    args: list[str] = Field(default_factory=list)
    description: str = ""
    gpus: DbInt = 0
    cpus: DbInt = Field(default=0, ge=0)  # 0: the server's default
    memory: str = Field(default="", max_length=32)  # "4G"; "": the server's default
    shm_size: str = Field(default="", max_length=32)  # "1G"; "": the server's default
    code_upload: str


class SessionOut(Record):
    name: str
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
    cpus: int
    memory_mb: int = 0
    shm_mb: int = 0
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    summary: dict[str, Any] | None
    parent: str | None = None
    queue_position: int | None = None  # set while it waits (1: the next to start)
    waiting_for: str | None = None  # while queued, e.g. "waits for a GPU"
    # a running session with no report and no CPU use for NSML_IDLE_AFTER_S: since when
    idle_since: datetime | None = None


class MemoRequest(Request):
    """``nsml memo``: the session's description, as ``ps`` shows it."""

    description: str = Field(max_length=4000)


class ForkRequest(Request):
    checkpoint: str | None = None  # default: the latest
    args: list[str] | None = None  # default: the parent's
    description: str = ""


class CheckpointOut(Record):
    name: str
    created_at: datetime
    elapsed_s: float | None
    summary: dict[str, Any] | None
    size_bytes: int


class MetricOut(Record):
    step: int
    key: str
    value: float | None
    scope: str | None
    created_at: datetime


class Report(BaseModel):
    step: DbInt
    metrics: dict[Annotated[str, Field(max_length=255)], MetricValue]
    summary: bool = False
    scope: str | None = Field(default=None, max_length=64)
    time: Timestamp


class ReportBatch(Request):
    reports: list[Report] = Field(max_length=100_000)
    # the SDK names each batch once and sends it again under that name when an answer was
    # lost, so the server can store a batch it already stored only once
    batch_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
