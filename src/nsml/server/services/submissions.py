"""Submissions: evaluate a checkpoint on the hidden test set, score it, rank it.

The participant's script runs in a fresh copy of the session's shipped source with the
checkpoint mounted read-only and no dataset at all; the platform streams it the test
inputs through ``nsml.paused`` and keeps the labels to itself.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nsml import wire
from nsml.artifacts import BadArchive, FileArtifactStore
from nsml.artifacts.safe_io import read_tail
from nsml.evaluation.limits import SubmissionUsage, daily_window_start, limit_status
from nsml.evaluation.metrics import (
    InvalidPredictions,
    MetricInfo,
    check_predictions,
    metric_info,
    parse_labels,
)
from nsml.evaluation.split import split_indices
from nsml.runners import Runner, RunSpec
from nsml.runners.base import EvaluationProcess
from nsml.runners.environments import EnvironmentFailed
from nsml.server.auth import Principal
from nsml.server.errors import BadRequest, ConflictError, NotFoundError, TooManyRequests
from nsml.server.services.evaluation_log import WITHHELD_ERROR, WITHHELD_TAIL, EvaluationLog
from nsml.server.services.evaluation_slots import EvaluationSlots
from nsml.server.services.notifications import NotificationService
from nsml.server.services.sessions import SessionService
from nsml.server.settings import ServerSettings
from nsml.store import (
    AbstractStore,
    Dataset,
    LimitReached,
    NotFound,
    Session,
    Submission,
    SubmissionStatus,
    User,
)

PREVIEW_SIZE = 10
SLOT_WAIT_S = 60.0
PROGRESS_EVERY_S = 0.5
LOG_TAIL_LINES = 15
LOG_TAIL_BYTES = 64 * 1024
REPLY_OVERHEAD_BYTES = 1024 * 1024  # the envelope, an error's traceback, the "ready" message
RESTART_REASON = "the server stopped during the evaluation"
NOT_PAUSED = (
    "the script ended without serving the request; call nsml.paused(scope=locals()) when it runs "
    "with --pause 1, after nsml.bind(...): `if config.pause: nsml.paused(scope=locals())`"
)


class EvaluationFailed(Exception):
    """The participant's code could not produce predictions; the message says why."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class BoardRow:
    rank: int
    owner: str
    score: float
    session: str
    checkpoint: str
    submitted_at: datetime
    submissions: int
    last_submitted_at: datetime | None = None


class SubmissionService:
    def __init__(
        self,
        store: AbstractStore,
        artifacts: FileArtifactStore,
        runner: Runner,
        settings: ServerSettings,
        sessions: SessionService,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.runner = runner
        self.settings = settings
        self.sessions = sessions
        self.notifications: NotificationService | None = None  # webhooks; set by the app
        self._slots = EvaluationSlots(settings.max_concurrent, settings.max_evaluations_per_user)
        # cancelling races the evaluation's own end: both decide the final status under this lock
        self._lock = threading.Lock()
        self._cancelled: set[int] = set()
        self._processes: dict[int, EvaluationProcess] = {}
        (artifacts.home / "evaluations").mkdir(exist_ok=True)

    def recover(self) -> None:
        self.store.fail_running_submissions(RESTART_REASON, _now())

    # requests ------------------------------------------------------------------------
    def preview(self, session: Session, checkpoint: str, batch_size: int) -> list[dict[str, Any]]:
        """``submit -t``: predictions for the first test inputs; nothing is scored or stored."""
        dataset = self._competition_dataset(session)
        inputs = self._test_inputs(dataset)[:PREVIEW_SIZE]
        predictions = self.predict(session, checkpoint, inputs, batch_size, dataset.eval_timeout_s)
        metric = metric_info(dataset.metric)
        try:  # the checks of a real submission, so a dry run passes only what it would accept;
            # these inputs are public, so the message may quote the value
            check_predictions(metric, predictions, len(inputs), self._classes(dataset, metric))
        except InvalidPredictions as exc:
            raise BadRequest(str(exc)) from None
        return [
            {
                "input": text,
                "probability": pair[0] if isinstance(pair, list) else None,
                "prediction": pair[1] if isinstance(pair, list) and len(pair) > 1 else pair,
            }
            for text, pair in zip(inputs, predictions, strict=True)
        ]

    def predict(
        self, session: Session, checkpoint: str, inputs: list[str], batch_size: int, timeout_s: float = 600
    ) -> list[Any]:
        """Run the bound ``infer`` of a checkpoint on ``inputs`` (``nsml infer``)."""
        self._check_request(session, checkpoint, batch_size)
        owner = session.owner
        if not self._slots.acquire(owner, timeout=SLOT_WAIT_S):  # the same slots as submissions
            raise TooManyRequests(
                f"no evaluation slot came free in {SLOT_WAIT_S:g} s ({self._slots.why_waiting(owner)}); "
                "try again later"
            )
        folder = self.artifacts.home / "evaluations" / f"run-{uuid.uuid4().hex}"
        try:
            return self._evaluate(session, checkpoint, inputs, batch_size, timeout_s, folder, lambda _: None)
        except EvaluationFailed as exc:
            raise BadRequest(str(exc)) from None
        finally:
            self._slots.release(owner)
            shutil.rmtree(folder, ignore_errors=True)

    def submit(self, user: User, session: Session, checkpoint: str, batch_size: int) -> Submission:
        dataset = self._competition_dataset(session)
        self._check_request(session, checkpoint, batch_size)
        if dataset.closed:
            raise ConflictError(f"the competition on {dataset.name} is closed; no more submissions")
        inputs = self._test_inputs(dataset)
        try:
            submission = self.store.create_submission(
                dataset, user.id, session, checkpoint, len(inputs), _now()
            )
        except LimitReached as exc:
            raise TooManyRequests(str(exc)) from None
        worker = threading.Thread(
            target=self._run_submission,
            args=(submission, dataset, session, inputs, batch_size),
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
        """Stop a queued or running submission of the caller. It then does not count against
        the limits, unless the test inputs had already reached the script (as for a failure:
        when a run ends could otherwise carry them out for free)."""
        submission = self.get(who, submission_id)
        with self._lock:
            current = self.store.get_submission(submission.id)
            if current.status not in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING):
                raise ConflictError(
                    f"submission {submission.id} is {current.status.value}; only a queued or running one "
                    "can be cancelled"
                )
            self._cancelled.add(submission.id)
            reason = (
                "cancelled after the test inputs reached the script, so it counts against the limits"
                if current.inputs_sent_at is not None
                else "cancelled before the test inputs reached the script; it does not count "
                "against the limits"
            )
            cancelled = self.store.update_submission(
                submission.id, status="cancelled", reason=reason, finished_at=_now()
            )
            process = self._processes.get(submission.id)
        if process is not None:
            process.kill()
        return cancelled

    def _settle(self, submission_id: int, log: EvaluationLog, line: str, **values: Any) -> Submission | None:
        """Record how the evaluation ended, unless its owner cancelled it meanwhile (None)."""
        updated = None
        with self._lock:
            cancelled = submission_id in self._cancelled
            self._cancelled.discard(submission_id)
            if not cancelled:
                updated = self.store.update_submission(submission_id, **values)
        log.finish("submission cancelled by its owner" if cancelled else line)
        return updated

    def log_path(self, submission_id: int) -> Path:
        return self.artifacts.home / "evaluations" / f"submission-{submission_id}" / "log.txt"

    # boards ----------------------------------------------------------------------------
    def board(self, dataset: Dataset) -> list[BoardRow]:
        """Best submission per owner; once closed, that entry is ranked by its private score.

        While open, the best entry and the ranks go by the public score as participants see
        it (rounded when the organiser chose so): ranking by the digits they cannot see
        would give those digits away through the order."""
        metric = metric_info(dataset.metric)
        sign = -1.0 if metric.higher_is_better else 1.0
        scored = [
            self.participant_view(dataset, s)
            for s in self.store.list_submissions(dataset.name)
            if s.status is SubmissionStatus.SCORED
        ]
        private = {s.id: s.private_score for s in self.store.list_submissions(dataset.name)}
        best: dict[str, Submission] = {}
        counts: dict[str, int] = {}
        latest: dict[str, datetime] = {}
        for submission in scored:  # oldest first: an equal later score does not replace
            counts[submission.owner] = counts.get(submission.owner, 0) + 1
            latest[submission.owner] = submission.created_at
            current = best.get(submission.owner)
            if current is None or sign * submission.public_score < sign * current.public_score:  # type: ignore[operator]
                best[submission.owner] = submission

        def shown(s: Submission) -> float:
            return (private[s.id] if dataset.closed else s.public_score) or 0.0

        entries = sorted(best.values(), key=lambda s: (sign * shown(s), s.created_at, s.id))
        return [
            BoardRow(
                rank,
                s.owner,
                shown(s),
                s.session_name,
                s.checkpoint,
                s.created_at,
                counts[s.owner],
                latest[s.owner],
            )
            for rank, s in enumerate(entries, start=1)
        ]

    def participant_view(self, dataset: Dataset, submission: Submission) -> Submission:
        """What participants see of a submission: the public score rounded to the organiser's
        decimals (each probe of the public board then tells less about single labels), and
        the private score only once the competition is closed."""
        public = submission.public_score
        if public is not None and dataset.round_public is not None:
            public = round(public, dataset.round_public)
        return replace(
            submission,
            public_score=public,
            private_score=submission.private_score if dataset.closed else None,
        )

    def limits(self, dataset: Dataset, user: User) -> dict[str, Any]:
        used_total, _ = self.store.count_submissions(dataset.id, user.id, None)
        used_today, oldest = self.store.count_submissions(dataset.id, user.id, daily_window_start(_now()))
        usage = SubmissionUsage(used_total, used_today, oldest)
        return asdict(limit_status(dataset.daily_limit, dataset.total_limit, usage))

    # the evaluation itself -------------------------------------------------------------
    def _competition_dataset(self, session: Session) -> Dataset:
        dataset = self.store.get_dataset(session.dataset)
        if dataset.test_size == 0:
            raise BadRequest(f"dataset {dataset.name} has no test split, so nothing can be submitted")
        return dataset

    def _check_request(self, session: Session, checkpoint: str, batch_size: int) -> None:
        if not 1 <= batch_size <= 100_000:
            raise BadRequest("the batch size must be between 1 and 100000")
        self.sessions.get_checkpoint(session, checkpoint)
        if not self.runner.sandboxed and not self.settings.allow_unsandboxed_eval:
            raise ConflictError(
                f"submissions are only evaluated in a sandbox, and {self.settings.sandbox_problem}; "
                "the operator may start the server with --allow-unsandboxed to evaluate without one"
            )

    def _test_inputs(self, dataset: Dataset) -> list[str]:
        path = self.artifacts.dataset_dir(dataset.name) / "test" / "test_data"
        return path.read_text(encoding="utf-8").splitlines()

    def _run_submission(
        self, submission: Submission, dataset: Dataset, session: Session, inputs: list[str], batch_size: int
    ) -> None:
        folder = self.log_path(submission.id).parent
        last = [0.0]

        def progress(done: int) -> None:
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
                last[0] = time.monotonic()
                self.store.update_submission(submission.id, progress=done)

        self._slots.acquire(
            session.owner, on_wait=lambda reason: self.store.update_submission(submission.id, reason=reason)
        )
        log = EvaluationLog(folder)
        with self._lock:
            cancelled = submission.id in self._cancelled
            self._cancelled.discard(submission.id)
            if not cancelled:
                self.store.update_submission(submission.id, status="running", reason=None)
        if cancelled:  # while it waited for a slot
            self._slots.release(session.owner)
            log.finish("submission cancelled by its owner before it started")
            return

        def inputs_going_out() -> None:  # from here on a failure counts against the limits
            log.inputs_going_out()
            self.store.update_submission(submission.id, inputs_sent_at=_now())

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
                public, private = self._score(dataset, predictions)
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

    def _score(self, dataset: Dataset, predictions: list[Any]) -> tuple[float, float]:
        """Labels are read here, in the server, and nowhere else."""
        metric = metric_info(dataset.metric)
        labels = self._labels(dataset, "test")
        # the values are the participant's, who had the test inputs: a message must not quote them
        classes = self._classes(dataset, metric)
        values = check_predictions(metric, predictions, len(labels), classes, quote=False)
        public, private = split_indices(dataset.name, len(labels), dataset.public_fraction)

        def score(indices: Sequence[int]) -> float:
            return metric.score([labels[i] for i in indices], [values[i] for i in indices])

        return score(public), score(private)

    def _labels(self, dataset: Dataset, split: str) -> list[float]:
        path = self.artifacts.dataset_dir(dataset.name) / split / f"{split}_label"
        return parse_labels(path.read_text().splitlines())

    def _classes(self, dataset: Dataset, metric: MetricInfo) -> list[float]:
        """The known classes (classification), or the training label range (regression)."""
        train = self._labels(dataset, "train")
        if metric.task == "classification":
            return sorted(set(train) | set(self._labels(dataset, "test")))
        return [min(train), max(train)]

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
        """Predictions of the checkpoint's ``infer`` for ``inputs``.

        ``inputs_going_out`` marks hidden test inputs: it is called before the first is
        sent, and from then on no failure message carries the process's own words (its
        log tail, its traceback), which could carry those inputs."""
        sent = [False]

        def withheld() -> bool:
            return sent[0] and inputs_going_out is not None

        work = folder / "work"
        folder.mkdir(parents=True, exist_ok=True)
        source = self.artifacts.session_dir(session.id) / "code.tar.gz"
        try:  # a fresh copy of the source as shipped, never the session's work dir
            self.artifacts.unpack_archive(source, work, max_bytes=self.settings.max_unpacked_bytes)
        except BadArchive as exc:
            raise EvaluationFailed(f"the shipped source could not be unpacked: {exc}") from None
        argv = [sys.executable, session.entry, *session.args]
        argv += ["--pause", "1", "--mode", "test", "--iteration", checkpoint]
        spec = RunSpec(
            session_id=session.id,
            name=session.name,
            argv=argv,
            work_dir=work,
            env={"NSML_ON_PLATFORM": "1", "NSML_SESSION": session.name, "NSML_DATASET_NAME": session.dataset},
            log_path=folder / "log.txt",
            checkpoint_dir=self.artifacts.checkpoint_dir(session.id, checkpoint),
            limits=self.sessions.resources.for_evaluation(session),
            source_archive=source,
        )
        try:
            process = self.runner.start_evaluation(spec)
        except EnvironmentFailed as exc:
            raise EvaluationFailed(str(exc)) from None
        if submission_id is not None:
            with self._lock:  # from here on `cancel` can stop it
                self._processes[submission_id] = process
                if submission_id in self._cancelled:
                    process.kill()
        deadline = time.monotonic() + timeout_s

        def receive(max_bytes: int) -> dict[str, Any]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EvaluationFailed(f"the evaluation exceeded its time limit of {timeout_s:g} s")
            try:
                reply = wire.recv(process.channel, deadline, max_bytes)
            except wire.MessageTooLarge as exc:  # refused from its length prefix, never read
                raise EvaluationFailed(
                    _too_large(exc.limit, self.settings.eval_reply_bytes_per_input)
                ) from None
            except TimeoutError:
                raise EvaluationFailed(f"the evaluation exceeded its time limit of {timeout_s:g} s") from None
            except (wire.ChannelClosed, ConnectionError, ValueError):
                code = process.wait(10)
                if code == 0:
                    raise EvaluationFailed(NOT_PAUSED) from None
                limit = process.limit_reason()
                if limit is not None:
                    raise EvaluationFailed(f"the evaluation was {limit}") from None
                tail = WITHHELD_TAIL if withheld() else _tail(spec.log_path)
                raise EvaluationFailed(
                    f"the script exited with code {code} before serving the request:\n{tail}"
                ) from None
            if reply.get("error") == "reply":  # the SDK would not send more than max_bytes
                raise EvaluationFailed(_too_large(max_bytes, self.settings.eval_reply_bytes_per_input))
            if "error" in reply:
                raise EvaluationFailed(WITHHELD_ERROR if withheld() else _describe(reply))
            return reply  # type: ignore[no-any-return]

        try:
            receive(REPLY_OVERHEAD_BYTES)  # the checkpoint is loaded
            predictions: list[Any] = []
            for start in range(0, len(inputs), batch_size):
                batch = inputs[start : start + batch_size]
                if not sent[0] and inputs_going_out is not None:
                    inputs_going_out()
                sent[0] = True
                limit = self._reply_limit(len(batch))
                wire.send(process.channel, {"op": "infer", "inputs": batch, "max_reply_bytes": limit})
                answer = receive(limit).get("predictions")
                if not isinstance(answer, list) or len(answer) != len(batch):
                    count = len(answer) if isinstance(answer, list) else type(answer).__name__
                    raise EvaluationFailed(
                        f"infer returned {count} predictions for the {len(batch)} inputs "
                        f"{start + 1}..{start + len(batch)}; it must return one per input"
                    )
                predictions.extend(answer)
                on_progress(len(predictions))
            wire.send(process.channel, {"op": "exit"})
            if process.wait(10) is None:
                process.kill()
            return predictions
        finally:
            if submission_id is not None:
                with self._lock:
                    self._processes.pop(submission_id, None)
            if process.wait(0) is None:
                process.kill()
            process.channel.close()

    def _reply_limit(self, batch: int) -> int:
        """The most bytes a reply to ``batch`` inputs may take: a generous budget per
        prediction plus room for the envelope, never over the operator's cap. A larger
        reply is refused before it is read, so one reply cannot balloon the server."""
        budget = batch * self.settings.eval_reply_bytes_per_input + REPLY_OVERHEAD_BYTES
        return min(budget, self.settings.max_eval_reply_bytes)


def _too_large(limit: int, per_input: int) -> str:
    """The platform's own words: the reply's actual size is not told, as a script could
    encode test inputs in it."""
    return (
        f"infer's reply was over the {limit} bytes allowed for its batch ({per_input} bytes per "
        f"input plus {REPLY_OVERHEAD_BYTES // 1024} KiB); infer must return one small prediction "
        "per input, e.g. (probability, label)"
    )


def _describe(reply: dict[str, Any]) -> str:
    kind, detail = reply.get("error"), reply.get("detail", "")
    if kind == "load":
        return f"the bound load function failed on the checkpoint:\n{detail}"
    if kind == "infer":
        return f"the bound infer function raised an exception:\n{detail}"
    return str(detail)


def _tail(log: Path) -> str:
    """The last lines of the evaluation's own output: bounded, and never through a link."""
    lines = read_tail(log, LOG_TAIL_BYTES).decode(errors="replace").strip().splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(no output)"
