"""AutoML studies: starting one, and what ``automl ls`` and ``automl show`` print."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from nsml.schemas.base import DbInt, Request


class StudyCreate(Request):
    """Like a session's request, plus the search spec (``sweep.yaml`` as JSON)."""

    dataset: str
    entry: str = Field(default="main.py", max_length=255)
    args: list[str] = Field(default_factory=list, max_length=1000)
    description: str = Field(default="", max_length=1000)
    gpus: DbInt = 0
    cpus: DbInt = Field(default=0, ge=0)
    memory: str = Field(default="", max_length=32)
    shm_size: str = Field(default="", max_length=32)
    code_upload: str
    spec: dict[str, Any]
    resume_pruned: bool = False  # rerun pruned trials from their checkpoints once there is room


class TrialOut(BaseModel):
    number: int
    state: str  # waiting | running | complete | pruned | failed
    session: str | None  # OWNER/DATASET/N, as `nsml ps` names it
    params: dict[str, Any]
    value: float | None  # the metric's last reported value (the pruner's value when pruned)
    step: int | None  # the last step the metric was reported at
    reason: str | None  # why it was pruned or failed
    resumed_from: int | None = None  # the pruned trial this one continues


class StudyOut(BaseModel):
    name: str
    owner: str
    dataset: str
    metric: str
    direction: str
    sampler: str
    pruner: str
    budget: int  # new trials the study runs (grid search: at most the grid's size)
    parallel: int
    resume_pruned: bool
    state: str  # running | finished | stopped | failed
    reason: str | None  # why it stopped or failed
    created_at: datetime
    counts: dict[str, int]  # trials by state
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any] | None
    best_session: str | None


class StudyDetail(StudyOut):
    trials: list[TrialOut]
    spec: dict[str, Any]


class ImportanceOut(BaseModel):
    """How much each parameter explains the value (Optuna's fANOVA); empty until two
    trials completed."""

    importances: dict[str, float]
