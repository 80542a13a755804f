"""Pydantic models of the HTTP API (version 1). Field names are the wire contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from nsml.store import Checkpoint, Dataset, MetricPoint, Session


class Health(BaseModel):
    status: str = "ok"
    version: str
    api: str = "v1"
    user: str


class UploadOut(BaseModel):
    upload_id: str
    size_bytes: int


class DatasetOut(BaseModel):
    name: str
    owner: str
    metric: str
    description: str
    train_size: int
    test_size: int
    size_bytes: int
    created_at: datetime

    @classmethod
    def of(cls, d: Dataset) -> DatasetOut:
        return cls(
            name=d.name,
            owner=d.owner,
            metric=d.metric,
            description=d.description,
            train_size=d.train_size,
            test_size=d.test_size,
            size_bytes=d.size_bytes,
            created_at=d.created_at,
        )


class DatasetCreate(BaseModel):
    name: str
    metric: str = "accuracy"
    description: str = ""
    upload_id: str


class SessionCreate(BaseModel):
    dataset: str
    entry: str = "main.py"
    args: list[str] = Field(default_factory=list)
    description: str = ""
    gpus: int = 0
    code_upload: str


class SessionOut(BaseModel):
    name: str
    owner: str
    dataset: str
    number: int
    entry: str
    args: list[str]
    description: str
    status: str
    exit_code: int | None
    reason: str | None
    gpus: int
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    summary: dict[str, Any] | None

    @classmethod
    def of(cls, s: Session) -> SessionOut:
        return cls(
            name=s.name,
            owner=s.owner,
            dataset=s.dataset,
            number=s.number,
            entry=s.entry,
            args=s.args,
            description=s.description,
            status=s.status.value,
            exit_code=s.exit_code,
            reason=s.reason,
            gpus=s.gpus,
            created_at=s.created_at,
            started_at=s.started_at,
            ended_at=s.ended_at,
            summary=s.summary,
        )


class CheckpointOut(BaseModel):
    name: str
    created_at: datetime
    elapsed_s: float | None
    summary: dict[str, Any] | None
    size_bytes: int

    @classmethod
    def of(cls, c: Checkpoint) -> CheckpointOut:
        return cls(
            name=c.name,
            created_at=c.created_at,
            elapsed_s=c.elapsed_s,
            summary=c.summary,
            size_bytes=c.size_bytes,
        )


class MetricOut(BaseModel):
    step: int
    key: str
    value: float | None
    scope: str | None
    created_at: datetime

    @classmethod
    def of(cls, m: MetricPoint) -> MetricOut:
        return cls(step=m.step, key=m.key, value=m.value, scope=m.scope, created_at=m.created_at)


class Report(BaseModel):
    step: int
    metrics: dict[str, Any]
    summary: bool = False
    scope: str | None = None
    time: datetime


class ReportBatch(BaseModel):
    reports: list[Report] = Field(max_length=100_000)
