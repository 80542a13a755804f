"""The artifact interface. Archives travel as gzip'd tar streams in both directions."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Iterator
from pathlib import Path


class UploadTooLarge(ValueError):
    """An upload went over the configured size limit."""


class BadArchive(ValueError):
    """An upload is not a readable tar.gz archive, or escapes its folder."""


class UnpackTooLarge(BadArchive):
    """An archive's members add up to more than the caller allows (a decompression bomb,
    or more than the owner's storage quota leaves)."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ArtifactStore(ABC):
    @abstractmethod
    async def receive_upload(
        self, chunks: AsyncIterable[bytes], max_bytes: int, owner_id: int | None = None
    ) -> tuple[str, int]:
        """Store an archive arriving over the network without blocking the event loop;
        until it is used or discarded it counts as ``owner_id``'s pending upload."""

    @abstractmethod
    def upload_path(self, upload_id: str) -> Path: ...

    @abstractmethod
    def discard_upload(self, upload_id: str) -> None: ...

    @abstractmethod
    def unpack_upload(self, upload_id: str, target: Path, max_bytes: int | None = None) -> None:
        """Extract an upload into ``target`` (which must not exist), safely."""

    @abstractmethod
    def put_checkpoint(self, session_id: int, name: str, upload_id: str, max_bytes: int | None = None) -> int:
        """Unpack an uploaded checkpoint archive atomically; returns its size in bytes."""

    @abstractmethod
    def read_checkpoint(self, session_id: int, name: str) -> Iterator[bytes]:
        """The checkpoint as a tar.gz byte stream."""

    @abstractmethod
    def delete_session(self, session_id: int) -> None: ...
