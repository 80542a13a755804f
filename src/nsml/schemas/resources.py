"""What sessions share beyond their own files: ``nsml.cache`` results and published
shared resources."""

from __future__ import annotations

from datetime import datetime

from nsml.schemas.base import Record


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
