"""What callers may see of boards, scores and limits: the read side of ``submissions``.

Participants see public scores rounded as the organiser chose, private scores only once
the competition is closed, and no scores at all in a blind phase until it ends; a
board ranks each owner's best entry, and after closing only their final selection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

from nsml.evaluation.baselines import place_baselines
from nsml.evaluation.board import BoardRow, rank_best_per_owner
from nsml.evaluation.limits import SubmissionUsage, daily_window_start, limit_status
from nsml.evaluation.metrics import metric_info
from nsml.server.auth import Principal
from nsml.server.services import phase_rules
from nsml.server.services.phase_rules import BoardScope
from nsml.store import AbstractStore, Dataset, Phase, Submission, SubmissionStatus, User


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Board:
    """A dataset's board as one caller may see it."""

    dataset: Dataset
    higher_is_better: bool
    ranked_by: str  # "public" while open, "private" once closed
    rows: list[BoardRow]
    phase: Phase | None = None
    blind: bool = False  # scores withheld from participants until the phase ends
    blind_until: datetime | None = None


class SubmissionViews:
    """Mixed into ``SubmissionService``, which provides ``store``."""

    store: AbstractStore

    # boards ----------------------------------------------------------------------------
    def board(self, dataset: Dataset, phase: str | None = None) -> list[BoardRow]:
        return self._ranked(dataset, phase_rules.board_scope(self.store, dataset, phase, _now()))

    def _ranked(self, dataset: Dataset, scope: BoardScope) -> list[BoardRow]:
        """Each owner's best submission, ranked (see ``nsml.evaluation.board``); once
        closed, only each owner's final selection counts (``nsml.evaluation.selection``)."""
        scored = [
            self.participant_view(dataset, replace(s, selected=s.id in scope.final), scope.phases)
            for s in scope.submissions
            if s.status is SubmissionStatus.SCORED
            and (not dataset.closed or s.id in scope.final or s.baseline)  # baselines always show
        ]
        private = {s.id: s.private_score for s in scope.submissions}
        ranked = rank_best_per_owner(dataset, [s for s in scored if not s.baseline], private)
        return place_baselines(dataset, ranked, [s for s in scored if s.baseline], private)

    def board_for(self, who: Principal, dataset: Dataset, phase: str | None = None) -> Board:
        """The public board: rank, owner, score, time and submission count for everybody;
        the session and checkpoint behind a row only for its owner; no scores while blind."""
        scope = phase_rules.board_scope(self.store, dataset, phase, _now())
        rows = [
            row if who.owns(row.owner) else replace(row, session=None, checkpoint=None, selected=False)
            for row in self._ranked(dataset, scope)
        ]
        if scope.blind:  # in name order: an order by score would give the scores away
            ranks = iter(range(1, len(rows) + 1))
            rows = [
                replace(r, rank=None if r.baseline else next(ranks), score=None)
                for r in sorted(rows, key=lambda r: (r.baseline, r.owner))
            ]
        ranked_by = "private" if dataset.closed else "public"
        higher_is_better = metric_info(dataset.metric).higher_is_better
        return Board(dataset, higher_is_better, ranked_by, rows, scope.phase, scope.blind, scope.blind_until)

    def participant_view(
        self, dataset: Dataset, submission: Submission, phases: list[Phase] | None = None
    ) -> Submission:
        """What participants see of a submission: the public score rounded to the organiser's
        decimals (each probe of the public board then tells less about single labels), and
        the private score only once the competition is closed."""
        public = submission.public_score
        if public is not None and dataset.round_public is not None:
            public = round(public, dataset.round_public)
        if phase_rules.hidden_by_blind_phase(self.store, dataset, submission, _now(), phases):
            public = None
        return replace(
            submission,
            public_score=public,
            private_score=submission.private_score if dataset.closed else None,
            score_history=[] if public is None else submission.score_history,
        )

    def limits(self, dataset: Dataset, user: User) -> dict[str, Any]:
        phase = phase_rules.current(self.store, dataset, _now())
        phase_id, limited = (None, dataset) if phase is None else (phase.id, phase)
        used_total, _ = self.store.count_submissions(dataset.id, user.id, None, phase_id)
        window = daily_window_start(_now())
        used_today, oldest = self.store.count_submissions(dataset.id, user.id, window, phase_id)
        usage = SubmissionUsage(used_total, used_today, oldest)
        return asdict(limit_status(limited.daily_limit, limited.total_limit, usage))
