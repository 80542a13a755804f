"""Creating, running, stopping and removing sessions; the runner's events land here."""

from __future__ import annotations

import fnmatch
import shlex
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nsml.artifacts import BadArchive, FileArtifactStore
from nsml.names import InvalidName, validate_checkpoint
from nsml.runners import Outcome, Runner, RunSpec
from nsml.server.auth import hash_token, new_token
from nsml.server.errors import BadRequest, ConflictError, NotFoundError
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, Checkpoint, NotFound, Session, SessionStatus, User
from nsml.store.entities import ACTIVE_STATUSES

RESTART_REASON = "the server stopped while the session was running"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SessionService:
    def __init__(
        self,
        store: AbstractStore,
        artifacts: FileArtifactStore,
        runner: Runner,
        settings: ServerSettings,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.runner = runner
        self.settings = settings
        self._ended = threading.Condition()

    # queries ---------------------------------------------------------------------
    def get(self, owner: str, dataset: str, number: int) -> Session:
        try:
            return self.store.get_session(owner, dataset, number)
        except NotFound:
            raise NotFoundError(
                f"session {owner}/{dataset}/{number} not found; `nsml ps -a` lists your sessions"
            ) from None

    def list(
        self,
        owner: str | Sequence[str],
        dataset: str | None,
        include_ended: bool,
        limit: int | None,
        pattern: str | None,
    ) -> list[Session]:
        statuses = None if include_ended or pattern else ACTIVE_STATUSES
        sessions = self.store.list_sessions(owner, dataset, statuses, None if pattern else limit)
        if pattern:
            sessions = [s for s in sessions if fnmatch.fnmatchcase(s.name, pattern)]
            sessions = sessions[:limit] if limit else sessions
        return sessions

    # creation ----------------------------------------------------------------------
    def create(
        self,
        owner: User,
        dataset_name: str,
        entry: str,
        args: Sequence[str],
        description: str,
        gpus: int,
        code_upload: str,
    ) -> Session:
        try:
            dataset = self.store.get_dataset(dataset_name)
        except NotFound:
            raise NotFoundError(
                f"dataset {dataset_name!r} not found; `nsml dataset ls` lists the datasets"
            ) from None
        if gpus < 0:
            raise BadRequest("the number of GPUs cannot be negative")
        staging = self.artifacts.home / "sessions" / f".incoming-{uuid.uuid4().hex}"
        try:
            self.artifacts.unpack_upload(code_upload, staging / "work")
            _check_entry(staging / "work", entry)
            shutil.copyfile(self.artifacts.upload_path(code_upload), staging / "code.tar.gz")
            token = new_token()
            session = self.store.create_session(
                owner.id, dataset.id, entry, list(args), description, gpus, hash_token(token)
            )
            staging.rename(self.artifacts.session_dir(session.id))
        except BadArchive as exc:
            raise BadRequest(str(exc)) from None
        finally:
            self.artifacts.discard_upload(code_upload)
            shutil.rmtree(staging, ignore_errors=True)
        self.artifacts.log_path(session.id).touch()
        self.runner.submit(self._spec(session, token))
        return session

    def _spec(self, session: Session, token: str) -> RunSpec:
        session_dir = self.artifacts.session_dir(session.id)
        return RunSpec(
            session_id=session.id,
            name=session.name,
            argv=[sys.executable, session.entry, *session.args],
            work_dir=session_dir / "work",
            env={
                "NSML_ON_PLATFORM": "1",
                "NSML_SESSION": session.name,
                "NSML_SESSION_TOKEN": token,
                "NSML_DATASET_NAME": session.dataset,
                "NSML_GPU_NUM": str(session.gpus),
            },
            log_path=self.artifacts.log_path(session.id),
            train_dir=self.artifacts.dataset_dir(session.dataset) / "train",
            api_url=self.settings.public_url,
            api_socket=self.settings.api_socket,
            gpus=session.gpus,
        )

    # runner events -----------------------------------------------------------------
    def on_started(self, session_id: int) -> None:
        self.store.transition_session(
            session_id, SessionStatus.RUNNING, from_statuses=[SessionStatus.QUEUED], at=_now()
        )

    def on_finished(self, session_id: int, outcome: Outcome) -> None:
        ended = self.store.transition_session(
            session_id,
            outcome.status,
            from_statuses=ACTIVE_STATUSES,
            exit_code=outcome.exit_code,
            reason=outcome.reason,
            at=_now(),
        )
        if ended is not None:
            self._log(
                session_id,
                f"[nsml] session {outcome.status.value}"
                + (f": {outcome.reason}" if outcome.reason else " (exit code 0)"),
            )
        with self._ended:
            self._ended.notify_all()

    def _log(self, session_id: int, line: str) -> None:
        path = self.artifacts.log_path(session_id)
        if path.parent.exists():
            with path.open("a", encoding="utf-8") as log:
                log.write(line + "\n")

    # control -----------------------------------------------------------------------
    def stop(self, session: Session) -> Session:
        if session.status.is_terminal:
            raise ConflictError(f"session {session.name} is not running (it is {session.status.value})")
        self.runner.stop(session.id)
        stopped = self.store.transition_session(
            session.id,
            SessionStatus.STOPPED,
            from_statuses=[SessionStatus.QUEUED],
            reason="stopped before it started",
            at=_now(),
        )
        if stopped is not None:
            self._log(session.id, "[nsml] session stopped before it started")
            return stopped
        return self.wait_ended(session.id, timeout=10.0)

    def wait_ended(self, session_id: int, timeout: float) -> Session:
        deadline = time.monotonic() + timeout
        with self._ended:
            while True:
                current = self.store.get_session_by_id(session_id)
                remaining = deadline - time.monotonic()
                if current.status.is_terminal or remaining <= 0:
                    return current
                self._ended.wait(min(remaining, 0.5))

    def remove(self, session: Session) -> None:
        if not session.status.is_terminal:
            session = self.stop(session)
            if not session.status.is_terminal:
                raise ConflictError(f"session {session.name} did not stop yet; try again")
        self.store.delete_session(session.id)
        self.artifacts.delete_session(session.id)

    def recover(self) -> None:
        """After a restart: running sessions lost their process; queued ones run now."""
        for session in self.store.list_sessions(statuses=[SessionStatus.RUNNING]):
            if self.store.transition_session(
                session.id,
                SessionStatus.FAILED,
                from_statuses=[SessionStatus.RUNNING],
                reason=RESTART_REASON,
                at=_now(),
            ):
                self._log(session.id, f"[nsml] session failed: {RESTART_REASON}")
        for session in reversed(self.store.list_sessions(statuses=[SessionStatus.QUEUED])):
            token = new_token()
            self.store.set_session_token(session.id, hash_token(token))
            self.runner.submit(self._spec(session, token))

    # logs, metrics, checkpoints ------------------------------------------------------
    def read_log(self, session: Session, offset: int, limit: int = 1 << 20) -> bytes:
        path = self.artifacts.log_path(session.id)
        if not path.exists():
            return b""
        with path.open("rb") as log:
            log.seek(offset)
            return log.read(limit)

    def add_reports(self, session: Session, reports: Sequence[dict[str, Any]]) -> None:
        self.store.add_reports(session.id, reports)

    def save_checkpoint(self, session: Session, name: str, upload_id: str) -> Checkpoint:
        """Unpack, rename into place, then list: a checkpoint is complete or absent."""
        try:
            validate_checkpoint(name)
            size = self.artifacts.put_checkpoint(session.id, name, upload_id)
        except InvalidName as exc:
            raise BadRequest(str(exc)) from None
        except BadArchive as exc:
            raise BadRequest(str(exc)) from None
        finally:
            self.artifacts.discard_upload(upload_id)
        current = self.store.get_session_by_id(session.id)
        now = _now()
        elapsed = (now - current.started_at).total_seconds() if current.started_at else None
        return self.store.put_checkpoint(session.id, name, elapsed, current.last_report, size, now)

    def get_checkpoint(self, session: Session, name: str) -> Checkpoint:
        try:
            return self.store.get_checkpoint(session.id, name)
        except NotFound:
            raise NotFoundError(
                f"checkpoint {name!r} not found in {session.name}; "
                f"`nsml model ls {session.name}` lists its checkpoints"
            ) from None


def _check_entry(work: Path, entry: str) -> None:
    target = (work / entry).resolve()
    if not target.is_relative_to(work.resolve()):
        raise BadRequest(f"entry file {entry!r} is outside the shipped folder")
    if not target.is_file():
        raise BadRequest(
            f"entry file {entry!r} not found in the shipped source; run from the folder "
            "that holds it or pass -e PATH"
        )


def format_args(args: Sequence[str]) -> str:
    return shlex.join(args)
