"""Pydantic models of the HTTP API (version 1). Field names are the wire contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nsml.store import SessionStatus


class Record(BaseModel):
    """A response built from a store record (``Model.model_validate(record)``)."""

    model_config = ConfigDict(from_attributes=True)


class Health(BaseModel):
    status: str = "ok"
    version: str
    api: str = "v1"
    user: str


class UploadOut(BaseModel):
    upload_id: str
    size_bytes: int


class DatasetOut(Record):
    name: str
    owner: str
    metric: str
    description: str
    train_size: int
    test_size: int
    size_bytes: int
    created_at: datetime


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
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    summary: dict[str, Any] | None


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
    step: int
    metrics: dict[str, Any]
    summary: bool = False
    scope: str | None = None
    time: datetime


class ReportBatch(BaseModel):
    reports: list[Report] = Field(max_length=100_000)
