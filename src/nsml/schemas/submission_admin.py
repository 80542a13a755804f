"""The organiser's submission tools: baselines, the whole queue, the results export."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from nsml.schemas.base import DbInt, Record, Request
from nsml.schemas.competition import SubmissionOut


class BaselineRequest(Request):
    ids: list[DbInt] = Field(max_length=1000)
    baseline: bool = True  # False: no longer a baseline


class QueueEntryOut(Record):
    kind: str  # "session" or "submission"
    id: int
    name: str  # the session ("owner/dataset/N")
    owner: str
    dataset: str
    status: str  # "queued" or "running"
    since: datetime  # queued at, or started at once running
    gpus: int = 0
    checkpoint: str | None = None  # a submission's
    queue_position: int | None = None
    waiting_for: str | None = None


class SlotUseOut(Record):
    kind: str  # "session" or "evaluation"
    total: int
    per_user: int  # 0: no cap
    in_use: int
    holders: dict[str, int]  # owner -> slots held


class QueueOut(BaseModel):
    slots: list[SlotUseOut]
    entries: list[QueueEntryOut]  # running first, then the queued in the order they start


class ExportBoardRowOut(BaseModel):
    rank: int | None  # None: a baseline
    owner: str
    private_score: float | None
    public_score: float | None
    submission_id: int | None
    session: str | None
    checkpoint: str | None
    submitted_at: datetime
    submissions: int
    baseline: bool = False


class ExportOut(BaseModel):
    dataset: str
    metric: str
    higher_is_better: bool
    closed: bool
    exported_at: datetime
    board: list[ExportBoardRowOut]  # ranked by the private score, as the closed board is
    submissions: list[SubmissionOut]  # every one, oldest first, scores unrounded
