"""``nsml.cache`` results of an owner: a row in the store per key, and the archive beside it.

Keys are content hashes computed by the SDK, so an entry is never rewritten: storing a
key that exists keeps the first copy.
"""

from __future__ import annotations

import re
from pathlib import Path

from nsml.artifacts import ArtifactStore, BadArchive
from nsml.server.errors import BadRequest, NotFoundError
from nsml.store import AbstractStore, CacheEntry, User

_KEY = re.compile(r"[0-9a-f]{64}")  # matched in full: `$` would pass a trailing newline


def check_key(key: str) -> str:
    """Checked before a request body is read, so a bad key never costs an upload."""
    if not _KEY.fullmatch(key):
        raise BadRequest(f"invalid cache key {key!r}: expected 64 hexadecimal characters")
    return key


class CacheService:
    def __init__(self, store: AbstractStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    def list(self, owner: User) -> list[CacheEntry]:
        return self.store.list_cache(owner.id)

    def hit(self, owner: User, key: str) -> CacheEntry:
        """Count a hit on the entry (a session may serve itself from a mounted copy)."""
        entry = self.store.get_cache(owner.id, check_key(key), hit=True)
        if entry is None:
            raise NotFoundError(f"no cache entry {key}")
        return entry

    def archive(self, owner: User, key: str) -> Path:
        """The stored archive of a hit; the hit counts even when the file has gone missing."""
        self.hit(owner, key)
        archive = self.artifacts.cache_archive(owner.name, key)
        if not archive.is_file():
            raise NotFoundError(f"no cache entry {key}")
        return archive

    def put(
        self, owner: User, key: str, function: str, dataset: str | None, upload_id: str
    ) -> tuple[CacheEntry, bool]:
        """Store the upload under ``key``: (the entry, whether this call stored it)."""
        try:
            size, stored = self.artifacts.put_cache(owner.name, check_key(key), upload_id)
        except BadArchive as exc:
            raise BadRequest(str(exc)) from None
        entry, created = self.store.add_cache(owner.id, key, function, dataset, size)
        return entry, stored and created

    def delete(self, owner: User, key: str) -> None:
        if not self.store.delete_cache(owner.id, check_key(key)):
            raise NotFoundError(f"no cache entry {key}")
        self.artifacts.delete_cache(owner.name, key)
