"""Re-scoring a submission's checkpoint on a test set: one path for re-runs and phases.

An organiser re-runs submissions after fixing a test set or a metric; a new phase
re-scores each participant's selected submissions on its own test set. Both come here,
and both go through ``SubmissionService.evaluate_in_turn``: the same evaluation slots,
sandbox and driver as any submission, never a second way of running participant code.
A re-run keeps the earlier scores in the submission's ``score_history`` and costs its
owner nothing against the limits; if it fails, the earlier scores stand.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from nsml.artifacts import ArtifactStore
from nsml.evaluation import scoring
from nsml.evaluation.driver import EvaluationFailed
from nsml.evaluation.metrics import InvalidPredictions
from nsml.names import InvalidName, parse_session
from nsml.server.errors import ApiError
from nsml.server.services import phase_rules
from nsml.server.services.submissions import SubmissionService
from nsml.store import AbstractStore, Dataset, NotFound, Submission, SubmissionStatus

log = logging.getLogger("nsml.server")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Rescorer:
    def __init__(
        self, store: AbstractStore, artifacts: ArtifactStore, submissions: SubmissionService
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.submissions = submissions
        self._lock = threading.Lock()
        self._busy: set[int] = set()  # submissions being re-scored: one re-score at a time each

    def busy(self, submission_id: int) -> bool:
        with self._lock:
            return submission_id in self._busy

    def queue(self, submission: Submission, dataset: Dataset, reason: str) -> bool:
        """Start re-scoring in the background; False if it is already being re-scored."""
        with self._lock:
            if submission.id in self._busy:
                return False
            self._busy.add(submission.id)
        worker = threading.Thread(
            target=self._run,
            args=(submission, dataset, reason),
            name=f"nsml-rescore-{submission.id}",
            daemon=True,
        )
        worker.start()
        return True

    def _run(self, submission: Submission, dataset: Dataset, reason: str) -> None:
        had_scores = submission.status is SubmissionStatus.SCORED
        folder = self.artifacts.local_evaluation_dir(f"rescore-{submission.id}-{uuid.uuid4().hex}")
        try:
            if had_scores:
                self.submissions.changes.update(submission.id, reason=f"being re-scored: {reason}")
            else:
                driver = self.submissions.driver  # this server evaluates it (see server_leases)
                self.submissions.changes.update(submission.id, status="running", reason=None, driver=driver)
            public, private = self._score(submission, dataset, folder)
            if self.store.get_submission(submission.id).status is SubmissionStatus.CANCELLED:
                return  # its owner cancelled the carried copy meanwhile
            self.store.record_rescore(submission.id, public, private, reason, _now())
            self.submissions.changes.touched(submission.id)  # wakes a long poll of it now
        except (EvaluationFailed, InvalidPredictions, ApiError, NotFound) as exc:
            message = str(exc) if not isinstance(exc, ApiError) else exc.detail
            if had_scores:
                self.submissions.changes.update(
                    submission.id, reason=f"re-run failed: {message}; the earlier scores stand"
                )
            else:
                self.submissions.changes.update(
                    submission.id, status="failed", reason=message, finished_at=_now()
                )
        except Exception:  # a platform error: the record must not stay running
            log.exception("re-scoring submission %s", submission.id)
            self.submissions.changes.update(
                submission.id,
                **({} if had_scores else {"status": "failed", "finished_at": _now()}),
                reason="re-scoring failed: a platform error; the operator can see server.log",
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            with self._lock:
                self._busy.discard(submission.id)

    def _score(self, submission: Submission, dataset: Dataset, folder: Path) -> tuple[float, float]:
        try:
            ref = parse_session(submission.session_name)
            session = self.store.get_session(ref.owner, ref.dataset, ref.number)
        except (InvalidName, NotFound):
            raise EvaluationFailed(f"its session {submission.session_name} was removed") from None
        test_root = phase_rules.test_root(self.artifacts, dataset.name, submission.phase)
        inputs = scoring.read_test_inputs(test_root)
        predictions = self.submissions.evaluate_in_turn(
            session, submission.checkpoint, inputs, dataset.eval_timeout_s, folder
        )
        return scoring.score(dataset, self.artifacts.local_dataset_dir(dataset.name), predictions, test_root)
