"""Pydantic models of the HTTP API (version 1). Field names are the wire contract.

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

from fastapi import Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from nsml.names import MAX_SESSION_NUMBER
from nsml.store import SessionStatus

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
DbInt = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
MAX_CREDITS = 1e12  # one grant or allowance; balances stay far from overflowing

_DIGITS = re.compile(r"[0-9]{1,10}")


def _ascii_digits(value: Any) -> Any:
    """Path numbers are plain ASCII digits: not ``+1``, `` 1``, ``1_0`` nor ``\u0661``."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("expected a number of at most 10 digits 0-9")
    return value


# path parameters: a session's number and a submission's id are INTEGER keys
# (Path before the validator, or the OpenAPI schema shows the bounds under FastAPI's own names)
SessionNumber = Annotated[int, Path(ge=0, le=MAX_SESSION_NUMBER), BeforeValidator(_ascii_digits)]
SubmissionId = Annotated[int, Path(ge=0, le=INT32_MAX), BeforeValidator(_ascii_digits)]


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


class DatasetCreate(Request):
    name: str
    metric: str = "accuracy"
    description: str = ""
    upload_id: str


class SessionCreate(Request):
    dataset: str
    entry: str = Field(default="main.py", max_length=255)
    args: list[str] = Field(default_factory=list)
    description: str = ""
    gpus: DbInt = 0
    cpus: DbInt = Field(default=0, ge=0)  # 0: the server's default
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
    queue_position: int | None = None  # set by `run` and a session's own GET while it waits
    # a running session with no report and no CPU use for NSML_IDLE_AFTER_S: since when
    idle_since: datetime | None = None


class MemoRequest(Request):
    """``nsml memo``: the session's description, as ``ps`` shows it."""

    description: str = Field(max_length=4000)


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
    step: DbInt
    metrics: dict[Annotated[str, Field(max_length=255)], MetricValue]
    summary: bool = False
    scope: str | None = Field(default=None, max_length=64)
    time: Timestamp


class ReportBatch(Request):
    reports: list[Report] = Field(max_length=100_000)


class DatasetOptions(Request):
    """Competition settings a dataset's owner may change; omitted fields stay as they are."""

    daily_limit: DbInt | None = Field(default=None, ge=0)
    total_limit: DbInt | None = Field(default=None, ge=0)
    public_fraction: FiniteFloat | None = Field(default=None, gt=0, lt=1)
    eval_timeout_s: int | None = Field(default=None, ge=1, le=86_400)
    round_public: int | None = Field(default=None, ge=0, le=12)  # decimals of public scores
    clear_limits: bool = False
    full_precision: bool = False  # public scores no longer rounded


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


class NotifyRequest(BaseModel):
    """``nsml notify --webhook URL``; the service checks the URL (and says why it is refused)."""

    model_config = ConfigDict(extra="forbid")
    webhook: str = Field(max_length=8192)


class NotifyOut(BaseModel):
    webhook: str | None
    events: list[str]


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


class ForkRequest(Request):
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


class CreditGrant(Request):
    amount: FiniteFloat = Field(default=0.0, ge=-MAX_CREDITS, le=MAX_CREDITS)
    daily: FiniteFloat | None = Field(default=None, ge=0, le=MAX_CREDITS)
    clear_daily: bool = False


# nsml exec: text between a session's owner and its process (bounds in services/live_exec.py)
EXEC_CODE_CHARS = 16_384
EXEC_OUTPUT_CHARS = 65_536


class ExecRequest(Request):
    code: str = Field(min_length=1, max_length=EXEC_CODE_CHARS)


class ExecOut(BaseModel):
    ok: bool  # false: the code raised; output is the exception's last line
    output: str  # the repr of an expression's value and what the code printed


class ExecCommandOut(BaseModel):
    id: str
    code: str


class ExecAnswer(Request):
    ok: bool
    output: str = Field(max_length=EXEC_OUTPUT_CHARS)
