"""The server itself: who is asking, what confines sessions, and raw uploads."""

from __future__ import annotations

from pydantic import BaseModel


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
