"""The API servers on one database and their leases (``nsml admin servers``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ServerOut(BaseModel):
    id: str
    url: str
    host: str
    pid: int
    state: str  # live | expired | taken over | stopped
    this: bool  # the server that answered
    started_at: datetime
    heartbeat_at: datetime
    lease_expires_at: datetime
    stopped_at: datetime | None = None
    taken_over_by: str | None = None
    taken_over_at: datetime | None = None
    sessions: int = 0  # queued and running sessions it drives
