"""Shared resources: folders published once by an organiser, read by every account's sessions.

They answer the 2018 pain point of word embeddings rebuilt in every session: an organiser
pre-trains them once and every participant's session restores them in seconds.
"""

from __future__ import annotations

import uuid
from typing import BinaryIO

from nsml.artifacts import ArtifactStore, BadArchive
from nsml.server.errors import BadRequest, ConflictError, NotFoundError
from nsml.store import AbstractStore, Conflict, NotFound, SharedResource, User

# A reader that looked the record up just before a replace finds its version deleted;
# looking again gives the new one. More than a few misses in a row means it was removed.
_OPEN_ATTEMPTS = 5


class SharedService:
    def __init__(self, store: AbstractStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    def list(self) -> list[SharedResource]:
        return self.store.list_shared()

    def find(self, name: str) -> SharedResource | None:
        """The resource NAME, or None while the name is free."""
        try:
            return self.store.get_shared(name)
        except NotFound:
            return None

    def _missing(self, name: str) -> NotFoundError:
        return NotFoundError(f"no shared resource {name!r}; `nsml shared ls` lists them")

    def check_publish(self, name: str, replace: bool, existing: SharedResource | None) -> None:
        """Refuse a publish that would fail anyway, before its body is read."""
        if existing is not None and not replace:
            raise ConflictError(
                f"shared resource {name!r} exists (published by {existing.owner}); "
                "pass --replace to publish a new version"
            )

    def publish(
        self,
        owner: User,
        name: str,
        description: str,
        upload_id: str,
        replace: bool,
        existing: SharedResource | None,
    ) -> tuple[SharedResource, bool]:
        """Store the upload as a new version, then switch the record to it in one statement.

        Returns (the resource, whether it replaced an older version).
        """
        try:
            self.check_publish(name, replace, existing)
        except ConflictError:
            self.artifacts.discard_upload(upload_id)
            raise
        version = uuid.uuid4().hex
        try:
            size, files = self.artifacts.put_shared(name, version, upload_id)
        except BadArchive as exc:
            raise BadRequest(str(exc)) from None
        try:
            resource, previous = self.store.put_shared(
                name, owner.id, description, size, files, version, replace
            )
        except Conflict:
            self.artifacts.delete_shared(name, version)
            raise ConflictError(
                f"shared resource {name!r} was just published by someone else; pass --replace to replace it"
            ) from None
        if previous is not None and previous != version:
            self.artifacts.delete_shared(name, previous)
        return resource, previous is not None

    def open(self, name: str) -> tuple[SharedResource, BinaryIO]:
        """The current version's archive, already open, so a later replace cannot pull it away."""
        for _ in range(_OPEN_ATTEMPTS):
            try:
                resource = self.store.get_shared(name)
            except NotFound:
                raise self._missing(name) from None
            try:
                return resource, self.artifacts.open_shared(name, resource.version)
            except FileNotFoundError:
                continue  # replaced or removed between the lookup and the open
        raise self._missing(name)

    def remove(self, name: str) -> SharedResource:
        removed = self.store.delete_shared(name)
        if removed is None:
            raise self._missing(name)
        self.artifacts.delete_shared(name, removed.version)
        return removed
