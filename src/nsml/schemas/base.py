"""Bounded numbers and the request and record base classes every schema builds on.

No input may make a 500, so every number a request carries is bounded here by what
will hold it: ``DbInt`` for what lands in an INTEGER column (4 bytes in PostgreSQL),
``Int64`` for anything else (SQLite's integers, file offsets), ``FiniteFloat`` for floats
that are stored. Out of range, the request gets a one-line 422 like any invalid one.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
DbInt = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def _bad_text(value: Any) -> bool:
    if isinstance(value, str):
        return _BAD_TEXT.search(value) is not None
    if isinstance(value, dict):
        return any(_bad_text(k) or _bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_text(v) for v in value)
    return False


class Request(BaseModel):
    """A request body. No text in it may hold NUL, which PostgreSQL cannot store, nor a
    lone surrogate (JSON's ``"\\ud800"``), which no database driver can encode."""

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        if _bad_text(data):
            raise ValueError("text may not contain NUL characters or lone surrogates")
        return data


def _metric(value: Any) -> Any:
    """A metric is what ``nsml.report`` sends: a finite number, a string, a bool or null."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("an integer metric must fit in 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a metric must be a finite number (NaN and infinity are not stored)")
        return value
    raise ValueError("a metric must be a number, a string, true, false or null")


def _timestamp(value: datetime) -> datetime:
    """In UTC (naive means UTC), between 1970 and 9000, so every later conversion works."""
    try:
        value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise ValueError("the time is out of range") from None
    if not 1970 <= value.year < 9000:
        raise ValueError("the time must lie between 1970 and 9000")
    return value


MetricValue = Annotated[Any, AfterValidator(_metric)]
Timestamp = Annotated[datetime, AfterValidator(_timestamp)]


class Record(BaseModel):
    """A response built from a store record (``Model.model_validate(record)``)."""

    model_config = ConfigDict(from_attributes=True)
