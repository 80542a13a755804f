"""Accounts: logging in, who one is, and what admins change (roles, invites, teams)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from nsml.schemas.base import DbInt, FiniteFloat, Record, Request


class LoginRequest(Request):
    name: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class RegisterRequest(LoginRequest):
    invite: str = Field(max_length=256)


class TokenOut(BaseModel):
    token: str
    user: str
    expires_at: datetime


class AccountOut(Record):
    name: str
    kind: str
    role: str
    team: str | None
    disabled: bool
    created_at: datetime


class MeOut(AccountOut):
    """``whoami``: the account, and the storage its sessions and uploads use."""

    storage_owner: str  # the account the quota applies to: the team, for a member
    storage_used_bytes: int
    storage_quota_bytes: int  # 0: no quota


class StorageQuotaChange(Request):
    mb: DbInt | None = Field(default=None, ge=0)  # None: back to the server's default; 0: unlimited


class UserCreate(Request):
    name: str = Field(max_length=64)
    role: str = "participant"
    password: str | None = Field(default=None, max_length=1024)


class UserCreated(BaseModel):
    account: AccountOut
    password: str | None  # only when the server generated it; shown once


class RoleChange(Request):
    role: str


class InviteCreate(Request):
    role: str = "participant"
    uses: int = Field(default=1, ge=1, le=10_000)
    expires_hours: FiniteFloat | None = Field(default=None, gt=0, le=876_000)  # 100 years


class InviteOut(BaseModel):
    code: str
    role: str
    uses: int


class TeamChange(Request):
    members: list[str] = Field(min_length=1, max_length=3)


class TeamOut(BaseModel):
    team: str
    members: list[str]


class NotifyRequest(BaseModel):
    """``nsml notify --webhook URL``; the service checks the URL (and says why it is refused)."""

    model_config = ConfigDict(extra="forbid")
    webhook: str = Field(max_length=8192)


class NotifyOut(BaseModel):
    webhook: str | None
    events: list[str]
