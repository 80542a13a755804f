"""What callers may see of boards, scores and limits: the read side of ``submissions``.

Participants see public scores rounded as the organiser chose, private scores only once
the competition is closed, and no scores at all in a blind phase until it ends; a
board ranks each owner's best entry, and after closing only their final selection.
"""

from __future__ import annotations

import threading
import time
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


# a board ranked for a dataset with phases is reused this long at most: which phase is
# current, and whether it is still blind, change with the clock and not with any write
PHASED_BOARD_S = 1.0


@dataclass(frozen=True)
class _Ranked:
    dataset: Dataset  # as read when it was ranked: its board_version, closing, settings
    closed: bool  # ``dataset.closed`` then (a deadline passes without a write)
    at: float
    scope: BoardScope
    rows: list[BoardRow]
    public: list[BoardRow]  # ``rows`` as anybody but their owners sees them


class BoardCache:
    """The last board ranked per (dataset, phase asked for), reused while the dataset row
    (whose ``board_version`` every board-changing write raises, on any server) is the same.

    One thread ranks a board that went stale; the viewers asking meanwhile wait for its
    result instead of each reading every submission again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boards: dict[tuple[str, str | None], _Ranked] = {}
        self._ranking: dict[tuple[str, str | None], threading.Lock] = {}

    def get(self, dataset: Dataset, phase: str | None) -> _Ranked | None:
        with self._lock:
            found = self._boards.get((dataset.name, phase))
        if found is None or found.closed != dataset.closed:
            return None
        # a board ranked from a newer dataset row than the caller read is as fresh as asked
        if found.dataset != dataset and found.dataset.board_version <= dataset.board_version:
            return None
        if found.scope.phases and time.monotonic() - found.at > PHASED_BOARD_S:
            return None
        return found

    def ranking(self, dataset: Dataset, phase: str | None) -> threading.Lock:
        """Held while one thread ranks this board."""
        with self._lock:
            return self._ranking.setdefault((dataset.name, phase), threading.Lock())

    def put(self, dataset: Dataset, phase: str | None, scope: BoardScope, rows: list[BoardRow]) -> _Ranked:
        ranked = _Ranked(dataset, dataset.closed, time.monotonic(), scope, rows, _public(rows))
        with self._lock:
            current = self._boards.get((dataset.name, phase))
            if current is None or current.dataset.board_version <= dataset.board_version:
                self._boards[(dataset.name, phase)] = ranked
        return ranked


def _public(rows: list[BoardRow]) -> list[BoardRow]:
    return [replace(row, session=None, checkpoint=None, selected=False) for row in rows]


class SubmissionViews:
    """Mixed into ``SubmissionService``, which provides ``store`` and ``boards``."""

    store: AbstractStore
    boards: BoardCache

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
        cached = self.boards.get(dataset, phase)
        if cached is None:
            with self.boards.ranking(dataset, phase):
                cached = self.boards.get(dataset, phase)  # ranked while this one waited
                if cached is None:
                    scope = phase_rules.board_scope(self.store, dataset, phase, _now())
                    cached = self.boards.put(dataset, phase, scope, self._ranked(dataset, scope))
        scope = cached.scope
        rows = [
            row if who.owns(row.owner) else public
            for row, public in zip(cached.rows, cached.public, strict=True)
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
