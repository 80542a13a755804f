"""Competition phases, final selections and re-runs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from nsml.schemas.base import DbInt, Record, Request, Timestamp


class ScoreHistoryOut(BaseModel):
    """Scores a submission had before a re-run replaced them, and why they were replaced."""

    public_score: float | None = None
    private_score: float | None = None
    scored_at: datetime | None = None
    reason: str = ""


class PhaseOut(Record):
    name: str
    index: int
    starts_at: datetime | None
    ends_at: datetime | None
    blind: bool
    daily_limit: int | None
    total_limit: int | None
    test_size: int
    state: Literal["upcoming", "running", "ended"]


class PhaseCreate(Request):
    """A new last phase; its test folder (test/test_data, test/test_label) comes as an upload."""

    name: str = Field(max_length=64)
    upload_id: str = Field(max_length=64)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    blind: bool = False
    daily_limit: DbInt | None = Field(default=None, ge=0)
    total_limit: DbInt | None = Field(default=None, ge=0)


class SelectionRequest(Request):
    ids: list[DbInt] = Field(max_length=100)


class RerunRequest(Request):
    ids: list[DbInt] = Field(default_factory=list, max_length=10_000)
    all: bool = False


class RerunOut(BaseModel):
    """The submissions queued for re-scoring; the board shows their new scores when done."""

    queued: list[int]
