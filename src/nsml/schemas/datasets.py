"""Datasets, and the competition settings their owners change."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from nsml.schemas.base import DbInt, FiniteFloat, Record, Request


class DatasetOut(Record):
    name: str
    owner: str
    metric: str
    description: str
    train_size: int
    test_size: int
    size_bytes: int
    created_at: datetime
    public_fraction: float
    daily_limit: int | None
    total_limit: int | None
    eval_timeout_s: int
    closed: bool
    round_public: int | None = None
    max_selected: int = 2


class DatasetCreate(Request):
    name: str
    metric: str = "accuracy"
    description: str = ""
    upload_id: str


class DatasetOptions(Request):
    """Competition settings a dataset's owner may change; omitted fields stay as they are."""

    daily_limit: DbInt | None = Field(default=None, ge=0)
    total_limit: DbInt | None = Field(default=None, ge=0)
    public_fraction: FiniteFloat | None = Field(default=None, gt=0, lt=1)
    eval_timeout_s: int | None = Field(default=None, ge=1, le=86_400)
    round_public: int | None = Field(default=None, ge=0, le=12)  # decimals of public scores
    max_selected: int | None = Field(default=None, ge=1, le=100)  # final picks per participant
    clear_limits: bool = False
    full_precision: bool = False  # public scores no longer rounded
