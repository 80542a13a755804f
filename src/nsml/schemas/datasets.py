"""Datasets, and the competition settings their owners change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from nsml.schemas.base import DbInt, FiniteFloat, Record, Request, Timestamp


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
    closed: bool  # closed by its organiser or past its deadline
    round_public: int | None = None
    rules: str = ""  # Markdown, like description
    deadline: datetime | None = None  # no submissions from then on
    version: int = 1  # raised by every push --replace
    max_selected: int = 2  # submissions each participant picks for the private ranking


MAX_MARKDOWN = 64 * 1024  # characters of a description or of the rules

MarkdownText = Annotated[str, Field(max_length=MAX_MARKDOWN)]


class DatasetCreate(Request):
    name: str
    metric: str | None = None  # accuracy for a new dataset; a new version keeps its metric
    description: MarkdownText = ""  # a new version keeps the old one when empty
    upload_id: str
    replace: bool = False  # a new version of an existing dataset, which must be the caller's


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
    description: MarkdownText | None = None
    rules: MarkdownText | None = None
    deadline: Timestamp | None = None  # a time without a zone is read as UTC
    clear_deadline: bool = False
