"""The organiser's tools over a competition's submissions: baselines and the results export.

Both are the dataset's organiser's (its owner, or an admin), as ``dataset close`` is; a
participant is refused with one line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from nsml.evaluation.baselines import place_baselines
from nsml.evaluation.board import BoardRow, rank_best_per_owner
from nsml.evaluation.metrics import metric_info
from nsml.evaluation.results_table import csv_table
from nsml.server.auth import Principal
from nsml.server.errors import BadRequest, Forbidden
from nsml.store import AbstractStore, Dataset, Submission, SubmissionStatus

MAX_IDS = 1000
EXPORT_COLUMNS = (
    "submission_id", "owner", "session", "checkpoint", "status", "public_score", "private_score",
    "created_at", "finished_at", "baseline", "final_rank", "on_final_board", "reason",
)  # fmt: skip


@dataclass(frozen=True)
class ResultsExport:
    """The final board, ranked by the private score as if the competition closed now,
    and every submission with both scores unrounded."""

    dataset: Dataset
    higher_is_better: bool
    exported_at: datetime
    board: list[BoardRow]
    submissions: list[Submission]

    def private_of(self, submission_id: int | None) -> float | None:
        return next((s.private_score for s in self.submissions if s.id == submission_id), None)

    def public_of(self, submission_id: int | None) -> float | None:
        return next((s.public_score for s in self.submissions if s.id == submission_id), None)

    def csv(self) -> str:
        """One table: every submission, its entry on the final board marked by its rank
        (``on_final_board``; a baseline's row has no rank)."""
        placed = {row.submission_id: row for row in self.board}
        rows = []
        for s in self.submissions:
            row = placed.get(s.id)
            rows.append(
                (
                    s.id, s.owner, s.session_name, s.checkpoint, s.status.value, s.public_score,
                    s.private_score, s.created_at, s.finished_at, s.baseline,
                    row.rank if row is not None else None, row is not None, s.reason,
                )
            )  # fmt: skip
        return csv_table(EXPORT_COLUMNS, rows)


class CompetitionAdmin:
    def __init__(self, store: AbstractStore) -> None:
        self.store = store

    def set_baselines(
        self, who: Principal, dataset: Dataset, ids: list[int], baseline: bool
    ) -> list[Submission]:
        """Mark (or unmark) submissions of ``dataset`` as baselines, all or none."""
        self._check_organiser(who, dataset, "mark baselines")
        if not ids:
            raise BadRequest("give the ids of the submissions to mark (`nsml submission ls DATASET --all`)")
        if len(ids) > MAX_IDS:
            raise BadRequest(f"at most {MAX_IDS} submissions at once")
        known = {s.id: s for s in self.store.list_submissions(dataset.name)}
        missing = [str(i) for i in ids if i not in known]
        if missing:
            raise BadRequest(
                f"no submission {', '.join(missing)} on {dataset.name}; "
                f"`nsml submission ls {dataset.name} --all` lists them"
            )
        return [self.store.update_submission(i, baseline=baseline) for i in dict.fromkeys(ids)]

    def export(self, who: Principal, dataset: Dataset) -> ResultsExport:
        self._check_organiser(who, dataset, "export its results")
        submissions = self.store.list_submissions(dataset.name)
        final = replace(dataset, closed_at=dataset.closed_at or datetime.now(timezone.utc))
        scored = [s for s in submissions if s.status is SubmissionStatus.SCORED]
        private = {s.id: s.private_score for s in submissions}
        ranked = rank_best_per_owner(final, [s for s in scored if not s.baseline], private)
        board = place_baselines(final, ranked, [s for s in scored if s.baseline], private)
        higher = metric_info(dataset.metric).higher_is_better
        return ResultsExport(dataset, higher, datetime.now(timezone.utc), board, submissions)

    @staticmethod
    def _check_organiser(who: Principal, dataset: Dataset, action: str) -> None:
        if not who.can_organise(dataset):
            raise Forbidden(
                f"only the organiser of {dataset.name} ({dataset.owner}) or an admin may {action}"
            )
