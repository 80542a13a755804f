"""Submissions, their limits, and the leaderboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from nsml.schemas.base import Record, Request
from nsml.schemas.phases import ScoreHistoryOut


class SubmissionCreate(Request):
    session: str = Field(max_length=200)
    checkpoint: str
    batch_size: int = Field(default=64, ge=1, le=100_000)
    test_mode: bool = False


class PreviewRow(BaseModel):
    input: str
    probability: Any
    prediction: Any


class InferRequest(Request):
    checkpoint: str
    inputs: list[str] = Field(max_length=1_000_000)
    batch_size: int = Field(default=64, ge=1, le=100_000)


class SubmissionOut(Record):
    id: int
    dataset: str
    owner: str
    session_name: str
    checkpoint: str
    status: str
    reason: str | None
    public_score: float | None
    private_score: float | None
    progress: int
    total: int
    created_at: datetime
    finished_at: datetime | None
    baseline: bool = False  # the organiser's reference entry: on the board, never ranked
    queue_position: int | None = None  # 1: the next to get an evaluation slot; None unless queued
    waiting_for: str | None = None  # e.g. "waits for your evaluation slot (2 of 2 in use)"
    phase: str | None = None
    selected: bool = False
    carried_from: int | None = None  # the previous phase's submission it re-scores
    score_history: list[ScoreHistoryOut] = []


class BoardRowOut(Record):
    """A public row: rank, owner, score, time; session and checkpoint only on one's own.
    A baseline row has no rank: it sits where its score places it."""

    rank: int | None
    owner: str
    score: float | None  # None on a blind phase's board until it ends
    submitted_at: datetime
    submissions: int
    last_submitted_at: datetime | None = None
    session: str | None = None
    checkpoint: str | None = None
    baseline: bool = False
    selected: bool = False  # the row's submission counts for the private ranking (own rows)


class BoardOut(BaseModel):
    dataset: str
    metric: str
    higher_is_better: bool
    closed: bool
    ranked_by: str  # "public" while open, "private" once closed
    rows: list[BoardRowOut]
    phase: str | None = None
    blind: bool = False  # scores withheld until the phase ends (``blind_until``)
    blind_until: datetime | None = None


class Limits(BaseModel):
    daily_limit: int | None
    used_today: int
    total_limit: int | None
    used_total: int
    next_allowed: datetime | None


class MySubmissions(BaseModel):
    dataset: str
    metric: str
    closed: bool
    limits: Limits
    submissions: list[SubmissionOut]
