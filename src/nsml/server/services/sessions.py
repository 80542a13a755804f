"""Creating, running, stopping and removing sessions; the runner's events land here.

Checkpoints are in :mod:`~nsml.server.services.session_checkpoints`, what the runner is
handed in :mod:`~nsml.server.services.session_specs`.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from nsml.artifacts import ArtifactStore, BadArchive, BadUploadId, UnpackTooLarge
from nsml.artifacts.safe_io import read_tail
from nsml.fault_points import pause_point
from nsml.runners import Outcome, Runner
from nsml.runners.environments import docker_images, image_note
from nsml.server.auth import hash_token, new_token
from nsml.server.errors import BadRequest, ConflictError, NotFoundError
from nsml.server.idle import IdleWatch
from nsml.server.outages import until_the_database_answers
from nsml.server.services.limits import LimitPolicy
from nsml.server.services.notifications import NotificationService
from nsml.server.services.session_checkpoints import SessionCheckpoints, continuation, now
from nsml.server.services.session_digest import LOG_TAIL_BYTES, exception_line
from nsml.server.services.session_ends import SessionEnds
from nsml.server.services.session_specs import SessionSpecs
from nsml.server.services.storage import MIB, StorageService
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, MetricPoint, NotFound, Session, SessionStatus, User
from nsml.store.entities import ACTIVE_STATUSES

RESTART_REASON = "the server stopped while the session was running"
SHUTDOWN_REASON = "the server shut down while the session ran"
STOP_WAIT_S = 10.0


class SessionService(SessionCheckpoints):
    def __init__(
        self,
        store: AbstractStore,
        artifacts: ArtifactStore,
        runner: Runner,
        settings: ServerSettings,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.runner = runner
        self.settings = settings
        self.resources = LimitPolicy(settings)
        self.specs = SessionSpecs(store, artifacts, settings, self.resources)
        self._ended = threading.Condition()
        self.ends = SessionEnds(store)  # what log followers ask, together
        self._stop_reasons: dict[int, str] = {}
        # called before a session is queued, to refuse it (credits); set by the app
        self.admission: Callable[[User, int], None] = lambda owner, gpus: None
        # called once a session that ran has ended, to bill its last minutes; set by the app
        self.on_ended: Callable[[Session], None] = lambda session: None
        self.storage: StorageService | None = None  # the quota; set by the app
        self.notifications: NotificationService | None = None  # webhooks; set by the app
        self.idle: IdleWatch | None = None  # idle detection; set by the app
        self.driver = settings.server_id or None  # recorded on every session this server runs

    # queries ---------------------------------------------------------------------
    def get(self, owner: str, dataset: str, number: int) -> Session:
        try:
            return self.store.get_session(owner, dataset, number)
        except NotFound:
            raise NotFoundError(
                f"session {owner}/{dataset}/{number} not found; `nsml ps -a` lists your sessions"
            ) from None

    def search(
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

    def queue_position(self, session: Session) -> int | None:
        """Where a queued session stands in the runner's line; None when it is not queued."""
        if session.status is not SessionStatus.QUEUED:
            return None
        return self.runner.queue_position(session.id)

    def account(self, name: str) -> User:
        """The account that new sessions of a caller belong to (its team, or itself)."""
        return self.store.get_user(name)

    # creation ----------------------------------------------------------------------
    def create(
        self,
        owner: User,
        dataset_name: str,
        entry: str,
        args: Sequence[str],
        description: str,
        gpus: int,
        code_upload: str | None = None,
        fork_of: tuple[Session, str] | None = None,
        cpus: int = 0,
        memory: str = "",
        shm_size: str = "",
        sizes_mb: tuple[int, int] | None = None,
        source_of: Session | None = None,
    ) -> Session:
        """A new session from uploaded source, or from a parent's source and checkpoint, or
        from another session's source alone (``source_of``: the trials of a study).

        The upload is discarded however this ends, a refusal included."""
        try:
            sizes = sizes_mb if sizes_mb is not None else self.resources.requested(memory, shm_size)
            return self._create(
                owner, dataset_name, entry, args, description, gpus, code_upload, fork_of, cpus, sizes,
                source_of,
            )  # fmt: skip
        finally:
            if code_upload is not None:
                self.artifacts.discard_upload(code_upload)

    def _create(
        self,
        owner: User,
        dataset_name: str,
        entry: str,
        args: Sequence[str],
        description: str,
        gpus: int,
        code_upload: str | None,
        fork_of: tuple[Session, str] | None,
        cpus: int,
        sizes_mb: tuple[int, int],
        source_of: Session | None = None,
    ) -> Session:
        try:
            dataset = self.store.get_dataset(dataset_name)
        except NotFound:
            raise NotFoundError(
                f"dataset {dataset_name!r} not found; `nsml dataset ls` lists the datasets"
            ) from None
        self._check_gpus(gpus)
        self._check_cpus(cpus)
        memory_mb, shm_mb = sizes_mb
        self.admission(owner, gpus)
        origin = None
        if fork_of is not None:
            origin = continuation(*fork_of)
        elif code_upload is None and source_of is None:
            raise BadRequest("a session needs source code: an upload or a session to fork")
        try:
            cap = self._source_cap(owner, code_upload)
            source = fork_of[0] if fork_of is not None else source_of
            from_session = source.id if source is not None else None
            with self.artifacts.staged_source(cap, code_upload, from_session) as work:
                _check_entry(work, entry)
                token = new_token()
                session = self.store.create_session(
                    owner.id,
                    dataset.id,
                    entry,
                    list(args),
                    description,
                    gpus,
                    hash_token(token),
                    parent=origin,
                    resume_checkpoint=origin,
                    cpus=cpus,
                    memory_mb=memory_mb,
                    shm_mb=shm_mb,
                    driver=self.driver,
                )
                self.artifacts.keep_source(work, session.id)
        except BadUploadId as exc:
            raise BadRequest(str(exc)) from None
        except UnpackTooLarge as exc:
            refusal = None
            if self.storage is not None:
                refusal = self.storage.check_unpacked(owner, exc.limit, "the unpacked source", code_upload)
            raise refusal or BadRequest(
                f"the source could not be unpacked: it unpacks to more than {exc.limit // MIB} MiB; "
                "add large files to .gitignore or put them in a dataset"
            ) from None
        except (BadArchive, FileNotFoundError) as exc:
            raise BadRequest(f"the source could not be unpacked: {exc}") from None
        images = docker_images(self.artifacts.local_source_archive(session.id))
        if images:
            self._log(session.id, f"[nsml] {image_note(images)}")
        self.runner.submit(self.specs.build(session, token))
        return session

    def _source_cap(self, owner: User, code_upload: str | None) -> int:
        """What shipped source may unpack to: the operator's source cap, within the quota."""
        cap = self.settings.max_source_bytes
        if self.storage is not None:
            cap = min(cap, self.storage.unpack_cap(owner, code_upload))
        return cap

    def _check_gpus(self, gpus: int) -> None:
        limit = self.settings.max_gpus_per_session
        if gpus > limit:
            raise BadRequest(f"at most {limit} GPUs per session on this server; -g {gpus} asks for more")
        self._check_fits("GPUs", "-g", gpus, self.runner.gpus_per_machine())

    def _check_cpus(self, cpus: int) -> None:
        self._check_fits("CPUs", "-c", cpus, self.runner.cpus_per_machine())

    def _check_fits(self, what: str, flag: str, asked: int, per_machine: int) -> None:
        """A session runs on one machine: asking for more than any has would queue forever."""
        if asked < 0:
            raise BadRequest(f"the number of {what} cannot be negative")
        if asked > per_machine:
            where = "one machine of this cluster has" if self.settings.runner == "ray" else "this server has"
            raise BadRequest(f"{where} at most {per_machine} {what}, so {flag} {asked} could never start")

    def fork(
        self, owner: User, parent: Session, checkpoint: str | None, args: list[str] | None, description: str
    ) -> Session:
        """A new session of the caller from ``parent``'s source, continuing from a checkpoint."""
        chosen = self._checkpoint_or_latest(parent, checkpoint)
        return self.create(
            owner,
            parent.dataset,
            parent.entry,
            parent.args if args is None else args,
            description,
            parent.gpus,
            fork_of=(parent, chosen),
            cpus=parent.cpus,
            sizes_mb=(parent.memory_mb, parent.shm_mb),
        )

    def resume(self, session: Session) -> Session:
        """Run an ended session again from its latest checkpoint (2018 ``resume``)."""
        if not session.status.is_terminal:
            raise ConflictError(f"session {session.name} is still {session.status.value}; stop it first")
        chosen = self._checkpoint_or_latest(session, None)
        self.admission(self.store.get_user(session.owner), session.gpus)
        token = new_token()
        resumed = self.store.requeue_session(
            session.id, hash_token(token), continuation(session, chosen), self.driver
        )
        if resumed is None:
            raise ConflictError(f"session {session.name} changed meanwhile; try again")
        self._log(session.id, f"[nsml] session resumed from checkpoint {chosen}")
        self.runner.submit(self.specs.build(resumed, token))
        return resumed

    # runner events -----------------------------------------------------------------
    def on_waiting(self, session_id: int, reason: str | None) -> None:
        self.store.set_queue_reason(session_id, reason)

    def on_started(self, session_id: int) -> None:
        self.store.transition_session(
            session_id,
            SessionStatus.RUNNING,
            from_statuses=[SessionStatus.QUEUED],
            at=now(),
            driver=self.driver,
        )

    def on_finished(self, session_id: int, outcome: Outcome) -> None:
        reason = self._stop_reasons.pop(session_id, None)
        if reason and outcome.status is SessionStatus.STOPPED:
            outcome = Outcome(SessionStatus.STOPPED, outcome.exit_code, reason)
        self.artifacts.settle_session(session_id)
        at = now()
        ended = until_the_database_answers(  # the run is over: its end must not be lost
            lambda: self.store.transition_session(
                session_id,
                outcome.status,
                from_statuses=ACTIVE_STATUSES,
                exit_code=outcome.exit_code,
                reason=outcome.reason,
                at=at,
                driver=self.driver,  # a server that was taken over does not end the survivor's run
            )
        )
        if ended is not None:
            self._log(
                session_id,
                f"[nsml] session {outcome.status.value}"
                + (f": {outcome.reason}" if outcome.reason else " (exit code 0)"),
            )
            self.on_ended(ended)
            self._notify_ended(ended)
        with self._ended:
            self._ended.notify_all()

    def _notify_ended(self, session: Session) -> None:
        if self.notifications is not None:
            self.notifications.session_ended(session)

    def idle_since(self, session: Session) -> datetime | None:
        """Since when a running session neither reported nor used the CPU, if it is idle."""
        if self.idle is None or session.status is not SessionStatus.RUNNING:
            return None
        return self.idle.idle_since(session.id)

    def _log(self, session_id: int, line: str) -> None:
        self.artifacts.append_log(session_id, line)

    # control -----------------------------------------------------------------------
    def stop(self, session: Session) -> Session:
        if session.status.is_terminal:
            raise ConflictError(f"session {session.name} is not running (it is {session.status.value})")
        if self.driven_elsewhere(session):  # its server's lease loop carries the stop out
            self.store.request_session_stop(session.id, now())
            return self.wait_ended(session.id, timeout=STOP_WAIT_S)
        if self.runner.stop(session.id):  # it is starting or running: its run reports the end
            return self.wait_ended(session.id, timeout=STOP_WAIT_S)
        stopped = self.store.transition_session(
            session.id,
            SessionStatus.STOPPED,
            from_statuses=[SessionStatus.QUEUED],
            reason="stopped before it started",
            at=now(),
        )
        if stopped is not None:
            self._log(session.id, "[nsml] session stopped before it started")
            self._notify_ended(stopped)
            return stopped
        return self.wait_ended(session.id, timeout=STOP_WAIT_S)

    def driven_elsewhere(self, session: Session) -> bool:
        """Whether another server on this database runs the session (see ``server_leases``)."""
        return session.driver is not None and session.driver != self.driver

    def stop_for(self, session_id: int, reason: str) -> None:
        """Stop a session on the platform's initiative (credits), with the reason recorded
        (here; another server driving it is asked to stop it, and records its own)."""
        if self.driven_elsewhere(self.store.get_session_by_id(session_id)):
            self.store.request_session_stop(session_id, now())
            return
        self._stop_reasons[session_id] = reason
        self.runner.stop(session_id)

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

    def recover(self, claimed: Sequence[Session], reason: str = RESTART_REASON) -> None:
        """Sessions this server now drives, claimed from its own life before a restart or
        from a server that stopped answering (``server_leases``): the running ones lost
        their process with that server, so they fail with ``reason``; the queued ones,
        oldest first, run here now."""
        for session in (s for s in claimed if s.status is SessionStatus.RUNNING):
            failed = self.store.transition_session(
                session.id,
                SessionStatus.FAILED,
                from_statuses=[SessionStatus.RUNNING],
                reason=reason,
                at=now(),
                driver=self.driver,
            )
            if failed is not None:
                self._log(session.id, f"[nsml] session failed: {reason}")
                self._notify_ended(failed)
        for session in (s for s in claimed if s.status is SessionStatus.QUEUED):
            token = new_token()
            self.store.set_session_token(session.id, hash_token(token))
            try:
                spec = self.specs.build(session, token)
            except (NotFound, ValueError) as exc:  # e.g. the forked-from session was removed
                why = f"cannot start again after a restart: {exc}"
                self.store.transition_session(
                    session.id,
                    SessionStatus.FAILED,
                    from_statuses=[SessionStatus.QUEUED],
                    reason=why,
                    at=now(),
                )
                continue
            self.runner.submit(spec)

    # logs, metrics -----------------------------------------------------------------
    def read_log(self, session: Session, offset: int) -> bytes:
        return self.artifacts.read_log(session.id, offset)

    def add_reports(
        self, session: Session, reports: Sequence[dict[str, Any]], batch_id: str | None = None
    ) -> None:
        pause_point("reports_commit")
        stored = self.store.add_reports(session.id, reports, batch_id)
        pause_point("reports_stored")
        if self.idle is not None:
            self.idle.alive(session.id)
        if not stored:  # a batch sent again after its answer was lost: stored already
            return
        points = [
            (key, report["step"], float(value), report["time"].timestamp())
            for report in reports
            for key, value in report["metrics"].items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
        if points:  # the same points, for TensorBoard
            self.artifacts.append_scalars(session.id, points)

    def train_split(self, session: Session) -> Iterator[bytes]:
        """The dataset's train split as tar.gz, for runners whose nodes do not share this disk."""
        return self.artifacts.read_train_split(session.dataset)

    def list_metrics(self, session: Session) -> list[MetricPoint]:
        return self.store.list_metrics(session.id)

    def latest_metrics(self, sessions: Sequence[Session]) -> dict[int, dict[str, float]]:
        """Every session's last value of each metric, by session id, in one store query."""
        return self.store.latest_metrics([s.id for s in sessions])

    def failure_line(self, session: Session) -> str | None:
        """The exception a failed session's log ends with, for its page."""
        if session.status is not SessionStatus.FAILED:
            return None
        return exception_line(read_tail(self.artifacts.local_log_path(session.id), LOG_TAIL_BYTES))


def _check_entry(work: Path, entry: str) -> None:
    target = (work / entry).resolve()
    if not target.is_relative_to(work.resolve()):
        raise BadRequest(f"entry file {entry!r} is outside the shipped folder")
    if not target.is_file():
        raise BadRequest(
            f"entry file {entry!r} not found in the shipped source; run from the folder "
            "that holds it or pass -e PATH"
        )
