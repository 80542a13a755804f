"""Pydantic models of the HTTP API (version 1). Field names are the wire contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nsml.store import SessionStatus


class Record(BaseModel):
    """A response built from a store record (``Model.model_validate(record)``)."""

    model_config = ConfigDict(from_attributes=True)


class LimitsOut(BaseModel):
    """What confines sessions on this server, and the limits a session gets."""

    sandbox: str  # "bubblewrap", or why sessions run without one
    enforcer: str  # cgroup2 | cgroup1 | rlimit: the host's means
    enforced_by: dict[str, str]  # limit -> how this host enforces it
    defaults: dict[str, str]  # limit -> what a session gets when it asks for nothing
    maxima: dict[str, str]  # flag -> the most a session may ask for
    fair_share: dict[str, int] = {}  # slots, per-user caps (0: none), default daily limit


class Health(BaseModel):
    status: str = "ok"
    version: str
    api: str = "v1"
    user: str
    owner: str  # the name new sessions get: the user's team, or the user
    role: str


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
    public_fraction: float
    daily_limit: int | None
    total_limit: int | None
    eval_timeout_s: int
    closed: bool
    round_public: int | None = None


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
    cpus: int = Field(default=0, ge=0)  # 0: the server's default
    memory: str = Field(default="", max_length=32)  # "4G"; "": the server's default
    shm_size: str = Field(default="", max_length=32)  # "1G"; "": the server's default
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
    cpus: int
    memory_mb: int = 0
    shm_mb: int = 0
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    summary: dict[str, Any] | None
    parent: str | None = None


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


class DatasetOptions(BaseModel):
    """Competition settings a dataset's owner may change; omitted fields stay as they are."""

    daily_limit: int | None = Field(default=None, ge=0)
    total_limit: int | None = Field(default=None, ge=0)
    public_fraction: float | None = Field(default=None, gt=0, lt=1)
    eval_timeout_s: int | None = Field(default=None, ge=1, le=86_400)
    round_public: int | None = Field(default=None, ge=0, le=12)  # decimals of public scores
    clear_limits: bool = False
    full_precision: bool = False  # public scores no longer rounded


class SubmissionCreate(BaseModel):
    session: str
    checkpoint: str
    batch_size: int = Field(default=64, ge=1, le=100_000)
    test_mode: bool = False


class PreviewRow(BaseModel):
    input: str
    probability: Any
    prediction: Any


class InferRequest(BaseModel):
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


class BoardRowOut(Record):
    """A public row: rank, owner, score, time; session and checkpoint only on one's own."""

    rank: int
    owner: str
    score: float
    submitted_at: datetime
    submissions: int
    last_submitted_at: datetime | None = None
    session: str | None = None
    checkpoint: str | None = None


class BoardOut(BaseModel):
    dataset: str
    metric: str
    higher_is_better: bool
    closed: bool
    ranked_by: str  # "public" while open, "private" once closed
    rows: list[BoardRowOut]


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


class LoginRequest(BaseModel):
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


class StorageQuotaChange(BaseModel):
    mb: int | None = Field(default=None, ge=0)  # None: back to the server's default; 0: unlimited


class UserCreate(BaseModel):
    name: str = Field(max_length=64)
    role: str = "participant"
    password: str | None = Field(default=None, max_length=1024)


class UserCreated(BaseModel):
    account: AccountOut
    password: str | None  # only when the server generated it; shown once


class RoleChange(BaseModel):
    role: str


class InviteCreate(BaseModel):
    role: str = "participant"
    uses: int = Field(default=1, ge=1, le=10_000)
    expires_hours: float | None = Field(default=None, gt=0)


class InviteOut(BaseModel):
    code: str
    role: str
    uses: int


class TeamChange(BaseModel):
    members: list[str] = Field(min_length=1, max_length=3)


class TeamOut(BaseModel):
    team: str
    members: list[str]


class ForkRequest(BaseModel):
    checkpoint: str | None = None  # default: the latest
    args: list[str] | None = None  # default: the parent's
    description: str = ""


class CacheEntryOut(Record):
    key: str
    function: str
    dataset: str | None
    size_bytes: int
    created_at: datetime
    last_used_at: datetime
    hits: int


class SharedResourceOut(Record):
    name: str
    owner: str
    description: str
    size_bytes: int
    files: int
    version: str
    created_at: datetime
    updated_at: datetime


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


class CreditGrant(BaseModel):
    amount: float = 0.0
    daily: float | None = Field(default=None, ge=0)
    clear_daily: bool = False
