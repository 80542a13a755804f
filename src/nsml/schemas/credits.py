"""Credits: GPU-minutes an account may spend, and what admins grant."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from nsml.schemas.base import FiniteFloat, Record, Request

MAX_CREDITS = 1e12  # one grant or allowance; balances stay far from overflowing


class CreditEventOut(Record):
    delta: float
    reason: str
    created_at: datetime


class CreditsOut(BaseModel):
    account: str
    balance: float
    daily: float | None
    enforced: bool
    history: list[CreditEventOut]


class CreditGrant(Request):
    amount: FiniteFloat = Field(default=0.0, ge=-MAX_CREDITS, le=MAX_CREDITS)
    daily: FiniteFloat | None = Field(default=None, ge=0, le=MAX_CREDITS)
    clear_daily: bool = False
