"""A session's checkpoints: saved by its process, listed, downloaded, removed, and the
``OWNER/DATASET/N:CHECKPOINT`` references that forks and resumes start from.

:class:`SessionCheckpoints` is a part of :class:`~nsml.server.services.sessions.SessionService`
kept in a module of its own; it relies on the attributes that service sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

from nsml.artifacts import ArtifactStore, BadArchive, UnpackTooLarge
from nsml.fault_points import pause_point
from nsml.names import InvalidName, validate_checkpoint
from nsml.server.errors import BadRequest, ConflictError, NotFoundError
from nsml.server.idle import IdleWatch
from nsml.server.services.storage import StorageService
from nsml.store import AbstractStore, Checkpoint, NotFound, Session, User
from nsml.store.entities import ACTIVE_STATUSES

MAX_CONTINUATION = 128  # the resume_checkpoint column's VARCHAR(128), which PostgreSQL enforces


def now() -> datetime:
    return datetime.now(timezone.utc)


class SessionCheckpoints:
    store: AbstractStore
    artifacts: ArtifactStore
    storage: StorageService | None
    idle: IdleWatch | None

    def list_checkpoints(self, session: Session) -> list[Checkpoint]:
        return self.store.list_checkpoints(session.id)

    def get_checkpoint(self, session: Session, name: str) -> Checkpoint:
        try:
            return self.store.get_checkpoint(session.id, name)
        except NotFound:
            raise NotFoundError(
                f"checkpoint {name!r} not found in {session.name}; "
                f"`nsml model ls {session.name}` lists its checkpoints"
            ) from None

    def read_checkpoint(self, session: Session, name: str) -> Iterator[bytes]:
        """The checkpoint's files as a tar.gz stream; NotFoundError before any byte."""
        checkpoint = self.get_checkpoint(session, name)
        return self.artifacts.read_checkpoint(session.id, checkpoint.name)

    def checkpoint_target(self, session: Session, name: str) -> tuple[User, int]:
        """Before a checkpoint's body is read: its name is valid; (the account whose quota
        it counts against, the bytes of the checkpoint of that name it would replace)."""
        try:
            validate_checkpoint(name)
        except InvalidName as exc:
            raise BadRequest(str(exc)) from None
        try:
            replaced = self.store.get_checkpoint(session.id, name).size_bytes
        except NotFound:
            replaced = 0
        return self.store.get_user(session.owner), replaced

    def save_checkpoint(
        self, session: Session, name: str, upload_id: str, owner: User | None = None, replaced: int = 0
    ) -> Checkpoint:
        """Unpack, rename into place, then list: a checkpoint is complete or absent.

        It may unpack to what the owner's quota leaves (with the space of the checkpoint
        it replaces), under the operator's hard cap."""
        cap = None
        if owner is not None and self.storage is not None:
            cap = self.storage.unpack_cap(owner, upload_id, replaced)
        try:
            validate_checkpoint(name)
            size = self.artifacts.put_checkpoint(session.id, name, upload_id, cap)
        except InvalidName as exc:
            raise BadRequest(str(exc)) from None
        except UnpackTooLarge as exc:
            refusal = None
            if owner is not None and self.storage is not None:
                what = f"checkpoint {name!r} unpacked"
                refusal = self.storage.check_unpacked(owner, exc.limit, what, upload_id, replaced)
            raise refusal or BadRequest(str(exc)) from None
        except BadArchive as exc:
            raise BadRequest(str(exc)) from None
        finally:
            self.artifacts.discard_upload(upload_id)
        pause_point("checkpoint_commit")  # in place, not yet listed: a crash here lists none
        if self.idle is not None:
            self.idle.alive(session.id)
        current = self.store.get_session_by_id(session.id)
        at = now()
        elapsed = (at - current.started_at).total_seconds() if current.started_at else None
        # the latest summary=True report, as `ps` shows it; any report if none was flagged
        summary = current.summary or current.last_report
        return self.store.put_checkpoint(session.id, name, elapsed, summary, size, at)

    def delete_checkpoint(self, session: Session, name: str) -> None:
        """``nsml model rm``: frees its space, unless a session still to run starts from it."""
        checkpoint = self.get_checkpoint(session, name)
        ref = reference(session, checkpoint.name)
        for other in self.store.list_sessions(statuses=ACTIVE_STATUSES):
            if other.resume_checkpoint == ref:
                raise ConflictError(f"session {other.name} starts from {ref}; wait for it or stop it first")
        if self.store.delete_checkpoint(session.id, checkpoint.name):
            self.artifacts.delete_checkpoint(session.id, checkpoint.name)

    def _checkpoint_or_latest(self, session: Session, checkpoint: str | None) -> str:
        if checkpoint is not None:
            return self.get_checkpoint(session, checkpoint).name
        saved = self.store.list_checkpoints(session.id)
        if not saved:
            raise BadRequest(f"session {session.name} has no checkpoint to continue from")
        return saved[-1].name


def reference(session: Session, checkpoint: str) -> str:
    return f"{session.name}:{checkpoint}"


def continuation(session: Session, checkpoint: str) -> str:
    """The ``OWNER/DATASET/N:CHECKPOINT`` a session starts from, refused when longer than
    the column that keeps it (long names of both could reach 269 characters)."""
    ref = reference(session, checkpoint)
    if len(ref) > MAX_CONTINUATION:
        raise BadRequest(
            f"cannot continue from {ref}: the session and checkpoint names together are over "
            f"{MAX_CONTINUATION} characters; save the checkpoint under a shorter name"
        )
    return ref
