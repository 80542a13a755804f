"""Per-account storage quota: checkpoints, ``nsml.cache`` entries and uploads together.

The operator sets a default (``NSML_STORAGE_QUOTA_MB``; 0: none). Checkpoints and cache
entries are counted from the store, uploads from what has arrived and is not used yet,
so several uploads at once cannot each take the whole remainder. What would go over is
refused with one line that says what was exceeded, how much is in use, and what frees
space; nothing of it is kept. The remainder also bounds what an archive may unpack to,
under the operator's hard cap (``NSML_MAX_UNPACKED_MB``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from nsml.artifacts import ArtifactStore, UploadTooLarge
from nsml.server.errors import TooLarge
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, User

MIB = 1024 * 1024
FREE_SPACE = "free space with `nsml model rm SESSION CHECKPOINT` or `nsml cache rm KEY`"


class QuotaExceeded(TooLarge):
    """An upload, checkpoint or cache entry would take its owner over the storage quota."""


@dataclass(frozen=True)
class Usage:
    stored_bytes: int  # checkpoints and cache entries, from the store
    pending_bytes: int  # uploads arrived or arriving, not used yet
    quota_bytes: int  # 0: no quota

    @property
    def used_bytes(self) -> int:
        return self.stored_bytes + self.pending_bytes

    @property
    def remaining(self) -> int | None:
        return None if not self.quota_bytes else max(0, self.quota_bytes - self.used_bytes)


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


class StorageService:
    def __init__(self, store: AbstractStore, artifacts: ArtifactStore, settings: ServerSettings) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings

    def quota_bytes(self, owner: User) -> int:
        override = getattr(owner, "storage_quota_mb", None)
        return (self.settings.storage_quota_mb if override is None else override) * MIB

    def usage(self, owner: User, excluding_upload: str | None = None, credit: int = 0) -> Usage:
        """What the owner stores (reads the store: call it off the event loop); ``credit``:
        bytes about to be replaced (a checkpoint saved again under its name);
        ``excluding_upload``: the upload now being used, which goes once it is."""
        stored = max(0, self.store.storage_used(owner.id) - credit)
        pending = self.artifacts.pending_bytes(owner.id, excluding_upload)
        return Usage(stored, pending, self.quota_bytes(owner))

    def refusal(self, owner: User, usage: Usage, what: str, needed: int | None) -> QuotaExceeded:
        more = f" and {what} needs {_mib(needed)} more" if needed is not None else f"; {what} does not fit"
        return QuotaExceeded(
            f"storage quota exceeded: {owner.name} uses {_mib(usage.used_bytes)} of "
            f"{_mib(usage.quota_bytes)}{more}; {FREE_SPACE}, or ask the operator for more"
        )

    def upload_limit(self, owner: User, usage: Usage, route_max: int, declared: int, what: str) -> int:
        """The most bytes an upload may send, checked before its body is read."""
        remaining = usage.remaining
        if remaining is None:
            return route_max
        if declared > remaining or remaining == 0:
            raise self.refusal(owner, usage, what, declared or None)
        return min(route_max, remaining)

    async def receive(
        self, chunks: AsyncIterable[bytes], max_bytes: int, owner: User | None
    ) -> tuple[str, int]:
        """Store an upload's bytes as they arrive: (upload id, size)."""
        try:
            return await self.artifacts.receive_upload(chunks, max_bytes, None if owner is None else owner.id)
        except UploadTooLarge as exc:
            raise TooLarge(str(exc)) from None

    def discard(self, upload_id: str) -> None:
        self.artifacts.discard_upload(upload_id)

    async def metered(
        self, owner: User, usage: Usage, chunks: AsyncIterable[bytes], what: str
    ) -> AsyncIterator[bytes]:
        """``chunks``, refused as soon as the owner's uploads (this one and any arriving
        at the same time) would go over the quota; the receiver deletes the partial file."""
        async for chunk in chunks:
            if usage.quota_bytes:
                now = Usage(usage.stored_bytes, self.artifacts.pending_bytes(owner.id), usage.quota_bytes)
                if now.used_bytes + len(chunk) > usage.quota_bytes:
                    raise self.refusal(owner, now, what, None)
            yield chunk

    def unpack_cap(self, owner: User, upload_id: str | None = None, credit: int = 0) -> int:
        """What an archive of ``owner`` may unpack to: the quota's remainder (not counting
        the upload being unpacked) under the operator's hard cap."""
        return self.artifacts.cap(self.usage(owner, upload_id, credit).remaining)

    def check_unpacked(
        self, owner: User, limit: int, what: str, upload_id: str | None = None, credit: int = 0
    ) -> QuotaExceeded | None:
        """The quota refusal for an archive that unpacked past ``limit`` when the quota's
        remainder set that limit; None when another cap did (the caller says which)."""
        usage = self.usage(owner, upload_id, credit)
        if usage.remaining is None or limit < usage.remaining:
            return None
        return self.refusal(owner, usage, what, None)
