"""Submissions: evaluate a checkpoint on the hidden test set, score it, rank it.

This service keeps the records, the queue and its slots, the notifications, and what
each caller may see of scores and boards. The participant's script is started by
``evaluation_launch`` and talked to by ``nsml.evaluation.driver``: the platform streams
it the test inputs through ``nsml.paused`` and keeps the labels to itself
(``nsml.evaluation.scoring``).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nsml.artifacts import ArtifactStore
from nsml.artifacts.archives import read_log_page
from nsml.evaluation import driver, scoring
from nsml.evaluation.driver import EvaluationFailed
from nsml.evaluation.log import EvaluationLog
from nsml.evaluation.metrics import InvalidPredictions
from nsml.fault_points import pause_point
from nsml.runners import Runner
from nsml.runners.base import EvaluationProcess
from nsml.server.auth import Principal
from nsml.server.errors import BadRequest, ConflictError, Forbidden, NotFoundError, TooManyRequests
from nsml.server.services import phase_rules
from nsml.server.services.evaluation_launch import EvaluationLauncher
from nsml.server.services.evaluation_slots import EvaluationSlots
from nsml.server.services.notifications import NotificationService
from nsml.server.services.sessions import SessionService
from nsml.server.services.submission_changes import SubmissionChanges
from nsml.server.services.submission_queue import cancelled_line, cancelled_outcome
from nsml.server.services.submission_views import BoardCache, SubmissionViews
from nsml.server.settings import ServerSettings
from nsml.store import (
    AbstractStore,
    Dataset,
    LimitReached,
    NotFound,
    Session,
    Submission,
    SubmissionStatus,
)

PREVIEW_SIZE = 10
SLOT_WAIT_S = 60.0
PROGRESS_EVERY_S = 0.5
RESTART_REASON = "the server stopped during the evaluation"
RESCORE_BATCH = 64  # a submission's batch size is not kept; the default of `nsml submit`


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SubmissionListing:
    """Submissions as the caller may see them, newest first, and the caller's limits."""

    submissions: list[Submission]
    limits: dict[str, Any]


class SubmissionService(SubmissionViews):
    def __init__(
        self,
        store: AbstractStore,
        artifacts: ArtifactStore,
        runner: Runner,
        settings: ServerSettings,
        sessions: SessionService,
    ) -> None:
        self.store = store
        self.changes = SubmissionChanges(store)  # every update goes through it, to wake long polls
        self.boards = BoardCache()
        self.artifacts = artifacts
        self._launcher = EvaluationLauncher(artifacts, runner, settings, sessions)
        self.notifications: NotificationService | None = None  # webhooks; set by the app
        self._slots = EvaluationSlots(settings.max_concurrent, settings.max_evaluations_per_user)
        # cancelling races the evaluation's own end: both decide the final status under this lock
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()
        self._processes: dict[int, EvaluationProcess] = {}
        self.driver = settings.server_id or None  # recorded on every submission evaluated here

    def recover(self, driver: str | None, reason: str = RESTART_REASON) -> int:
        """Fail the queued and running submissions of ``driver`` (this server before a
        restart, or one that stopped answering): their evaluation ran in that server and
        died with it. They do not count against the limits and keep no score; how many."""
        return self.store.fail_driven_submissions(driver, self.driver or "", reason, _now())

    # requests ------------------------------------------------------------------------
    def preview(self, session: Session, checkpoint: str, batch_size: int) -> list[dict[str, Any]]:
        """``submit -t``: predictions for the first test inputs; nothing is scored or stored."""
        dataset = self._competition_dataset(session)
        folder = self.artifacts.local_dataset_dir(dataset.name)
        inputs = scoring.read_test_inputs(folder)[:PREVIEW_SIZE]
        predictions = self.predict(session, checkpoint, inputs, batch_size, dataset.eval_timeout_s)
        try:
            scoring.check_preview(dataset, folder, predictions, len(inputs))
        except InvalidPredictions as exc:
            raise BadRequest(str(exc)) from None
        return scoring.preview_rows(inputs, predictions)

    def predict(
        self, session: Session, checkpoint: str, inputs: list[str], batch_size: int, timeout_s: float = 600
    ) -> list[Any]:
        """Run the bound ``infer`` of a checkpoint on ``inputs`` (``nsml infer``)."""
        self._launcher.check(session, checkpoint, batch_size)
        owner = session.owner
        if not self._slots.acquire(owner, timeout=SLOT_WAIT_S):  # the same slots as submissions
            raise TooManyRequests(
                f"no evaluation slot came free in {SLOT_WAIT_S:g} s ({self._slots.why_waiting(owner)}); "
                "try again later"
            )
        folder = self.artifacts.local_evaluation_dir(f"run-{uuid.uuid4().hex}")
        try:
            return self._evaluate(session, checkpoint, inputs, batch_size, timeout_s, folder, lambda _: None)
        except EvaluationFailed as exc:
            raise BadRequest(str(exc)) from None
        finally:
            self._slots.release(owner)
            shutil.rmtree(folder, ignore_errors=True)

    def submit(self, session: Session, checkpoint: str, batch_size: int) -> Submission:
        """Queue the evaluation of a checkpoint, on behalf of the session's owner."""
        user = self.store.get_user(session.owner)
        dataset = self._competition_dataset(session)
        self._launcher.check(session, checkpoint, batch_size)
        if dataset.closed:
            raise ConflictError(f"the competition on {dataset.name} is closed; no more submissions")
        target = phase_rules.submission_target(self.store, self.artifacts, dataset, _now())
        inputs = scoring.read_test_inputs(target.test_root)
        phase_id = target.phase.id if target.phase else None
        try:
            submission = self.store.create_submission(
                target.limits, user.id, session, checkpoint, len(inputs), _now(), phase_id, self.driver
            )
        except LimitReached as exc:
            raise TooManyRequests(str(exc)) from None
        worker = threading.Thread(
            target=self._run_submission,
            args=(submission, dataset, session, inputs, batch_size, target.test_root),
            name=f"nsml-submission-{submission.id}",
            daemon=True,
        )
        worker.start()
        return submission

    def get(self, who: Principal, submission_id: int, organisers_too: bool = False) -> Submission:
        """The caller's own submission; with ``organisers_too``, also any on a dataset the
        caller organises (its full evaluation log is theirs to read)."""
        try:
            submission = self.store.get_submission(submission_id)
        except NotFound:
            submission = None
        if submission is None or not (
            who.owns(submission.owner)
            or (organisers_too and who.can_organise(self.store.get_dataset(submission.dataset)))
        ):
            raise NotFoundError(f"submission {submission_id} not found")
        return submission

    def cancel(self, who: Principal, submission_id: int) -> Submission:
        """Stop a queued or running submission of the caller, or (organisers) of anyone on
        the dataset. Whether it counts against the limits: see ``cancelled_outcome``."""
        submission = self.get(who, submission_id, organisers_too=True)
        with self._lock:
            current = self.store.get_submission(submission.id)
            if current.status not in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING):
                raise ConflictError(
                    f"submission {submission.id} is {current.status.value}; only a queued or running one "
                    "can be cancelled"
                )
            self._cancelled.add(submission.id)
            values = cancelled_outcome(current, by_owner=who.owns(current.owner))
            cancelled = self.changes.update(submission.id, finished_at=_now(), **values)
            process = self._processes.get(submission.id)
        self._slots.wake()  # a queued one leaves the line now
        if process is not None:
            process.kill()
        return cancelled

    @property
    def slots(self) -> EvaluationSlots:
        return self._slots

    def _settle(self, submission_id: int, log: EvaluationLog, line: str, **values: Any) -> Submission | None:
        """Record how the evaluation ended, unless its owner cancelled it meanwhile (None)."""
        updated = None
        with self._lock:
            cancelled = submission_id in self._cancelled
            self._cancelled.discard(submission_id)
            if not cancelled:
                updated = self.changes.update(submission_id, **values)
        log.finish(cancelled_line(self.store.get_submission(submission_id)) if cancelled else line)
        return updated

    def _evaluation_dir(self, submission_id: int) -> Path:
        return self.artifacts.local_evaluation_dir(f"submission-{submission_id}")

    def read_log(self, who: Principal, submission_id: int, offset: int) -> bytes:
        """A page of the evaluation's log from ``offset``. The participant reads what the
        evaluation printed before the test inputs went out, and the platform's lines (see
        ``nsml.evaluation.log``); the dataset's organiser and admins read everything."""
        submission = self.get(who, submission_id, organisers_too=True)
        dataset = self.store.get_dataset(submission.dataset)
        log = EvaluationLog(self._evaluation_dir(submission_id))
        return read_log_page(log.full if who.can_organise(dataset) else log.shown, offset)

    def visible(self, submission: Submission) -> Submission:
        """A submission as its owner may see it (see ``participant_view``)."""
        return self.participant_view(self.store.get_dataset(submission.dataset), submission)

    def listing(self, who: Principal, dataset: Dataset, everyone: bool = False) -> SubmissionListing:
        """Every submission of the caller (or team) on ``dataset``, with the limits left;
        with ``everyone``, the dataset's organiser sees everybody's, scores unhidden."""
        if everyone and not who.can_organise(dataset):
            raise Forbidden(f"only the organiser of {dataset.name} or an admin sees all its submissions")
        owner = self.store.get_user(who.user.owner_name)
        chosen = reversed(self.store.list_submissions(dataset.name, owner=None if everyone else owner.name))
        phases = self.store.list_phases(dataset.name)
        return SubmissionListing(
            [s if everyone else self.participant_view(dataset, s, phases) for s in chosen],
            self.limits(dataset, owner),
        )

    # the competition's settings ---------------------------------------------------------
    def close_competition(self, who: Principal, dataset: Dataset) -> Dataset:
        """End the competition: no more submissions, and the board ranks by private score."""
        self._check_organiser(who, dataset)
        if dataset.closed:
            return dataset
        return self.store.update_dataset(dataset.name, closed_at=_now())

    def configure_competition(self, who: Principal, dataset: Dataset, options: dict[str, Any]) -> Dataset:
        """Set the competition's options (limits, rounding, split, time-out)."""
        self._check_organiser(who, dataset)
        if "public_fraction" in options and self.store.list_submissions(dataset.name):
            raise BadRequest("the public/private split cannot change once submissions were scored on it")
        return self.store.update_dataset(dataset.name, **options)

    def _check_organiser(self, who: Principal, dataset: Dataset) -> None:
        if not who.can_organise(dataset):
            raise Forbidden(
                f"only the organiser of {dataset.name} ({dataset.owner}) or an admin may change it"
            )

    # the evaluation itself -------------------------------------------------------------
    def _competition_dataset(self, session: Session) -> Dataset:
        dataset = self.store.get_dataset(session.dataset)
        if dataset.test_size == 0:
            raise BadRequest(f"dataset {dataset.name} has no test split, so nothing can be submitted")
        return dataset

    def _run_submission(
        self,
        submission: Submission,
        dataset: Dataset,
        session: Session,
        inputs: list[str],
        batch_size: int,
        test_root: Path,
    ) -> None:
        folder = self._evaluation_dir(submission.id)
        last = [0.0]

        def progress(done: int) -> None:
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
                last[0] = time.monotonic()
                self.changes.update(submission.id, progress=done)

        acquired = self._slots.acquire(
            session.owner,
            on_wait=lambda reason: self.changes.update(submission.id, reason=reason),
            key=submission.id,
            give_up=lambda: submission.id in self._cancelled,
        )
        log = EvaluationLog(folder)
        with self._lock:
            cancelled = submission.id in self._cancelled
            self._cancelled.discard(submission.id)
            if not cancelled:
                self.changes.update(submission.id, status="running", reason=None)
        if cancelled:  # while it waited for a slot
            if acquired:
                self._slots.release(session.owner)
            log.finish(cancelled_line(self.store.get_submission(submission.id), before_start=True))
            return

        def inputs_going_out() -> None:  # from here on a failure counts against the limits
            log.inputs_going_out()
            self.changes.update(submission.id, inputs_sent_at=_now())

        try:
            try:
                predictions = self._evaluate(
                    session,
                    submission.checkpoint,
                    inputs,
                    batch_size,
                    dataset.eval_timeout_s,
                    folder,
                    progress,
                    inputs_going_out,
                    submission_id=submission.id,
                )
                folder_of_dataset = self.artifacts.local_dataset_dir(dataset.name)
                public, private = scoring.score(dataset, folder_of_dataset, predictions, test_root)
            except (EvaluationFailed, InvalidPredictions) as exc:
                self._notify(
                    dataset,
                    self._settle(
                        submission.id,
                        log,
                        f"submission failed: {exc}",
                        status="failed",
                        reason=str(exc),
                        finished_at=_now(),
                    ),
                )
                return
            except Exception as exc:  # a platform error: still a clear record, never a stuck one
                failed = self._settle(
                    submission.id,
                    log,
                    "submission failed: a platform error; the operator can see server.log",
                    status="failed",
                    reason=f"platform error: {exc}",
                    finished_at=_now(),
                    inputs_sent_at=None,  # not the participant's doing: it does not count
                )
                self._notify(dataset, failed)
                raise
            finally:
                shutil.rmtree(folder / "work", ignore_errors=True)
        finally:
            self._slots.release(session.owner)
        pause_point("scoring_commit")  # scored, not yet recorded
        scored = self._settle(
            submission.id,
            log,
            f"submission scored: {len(inputs)} predictions checked; `nsml board` shows the score",
            status="scored",
            public_score=public,
            private_score=private,
            progress=len(inputs),
            finished_at=_now(),
        )
        self._notify(dataset, scored)

    def _notify(self, dataset: Dataset, submission: Submission | None) -> None:
        """Tell the owner's webhook, with the score as the owner may see it (not when the
        owner cancelled the submission: ``submission`` is then None)."""
        if self.notifications is None or submission is None:
            return
        try:
            current = self.store.get_dataset(dataset.name)  # closed (or re-rounded) meanwhile?
        except NotFound:
            current = dataset
        self.notifications.submission_finished(self.participant_view(current, submission))

    def evaluate_in_turn(
        self, session: Session, checkpoint: str, inputs: list[str], timeout_s: float, folder: Path
    ) -> list[Any]:
        """Predictions for a re-score: the same slots, sandbox and driver as a submission."""
        self._launcher.check(session, checkpoint, RESCORE_BATCH)
        self._slots.acquire(session.owner)
        try:
            return self._evaluate(
                session, checkpoint, inputs, RESCORE_BATCH, timeout_s, folder, lambda _: None
            )
        finally:
            self._slots.release(session.owner)
            shutil.rmtree(folder / "work", ignore_errors=True)

    def _evaluate(
        self,
        session: Session,
        checkpoint: str,
        inputs: list[str],
        batch_size: int,
        timeout_s: float,
        folder: Path,
        on_progress: Callable[[int], None],
        inputs_going_out: Callable[[], None] | None = None,
        submission_id: int | None = None,
    ) -> list[Any]:
        """Predictions of the checkpoint's ``infer`` for ``inputs``, from a fresh process
        (see ``nsml.evaluation.driver``); with ``submission_id``, ``cancel`` can stop it."""
        process, log_path = self._launcher.start(session, checkpoint, folder)
        if submission_id is not None:
            with self._lock:  # from here on `cancel` can stop it
                self._processes[submission_id] = process
                if submission_id in self._cancelled:
                    process.kill()

        def let_go() -> None:
            if submission_id is not None:
                with self._lock:
                    self._processes.pop(submission_id, None)

        return driver.predict(
            process,
            inputs,
            batch_size,
            timeout_s=timeout_s,
            replies=self._launcher.replies,
            log_path=log_path,
            on_progress=on_progress,
            inputs_going_out=inputs_going_out,
            on_stopping=let_go,
        )
