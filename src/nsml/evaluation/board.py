"""The ranking rules of a competition's board.

A pure function of a dataset and its scored submissions: what participants may see of
a score, and of the board's rows, is the server's to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nsml.evaluation.metrics import metric_info
from nsml.store.entities import Dataset, Submission


@dataclass(frozen=True)
class BoardRow:
    rank: int | None  # None on a baseline's row (see ``nsml.evaluation.baselines``)
    owner: str
    score: float | None  # None on a blind phase's board
    session: str | None  # None on a row shown to somebody other than its owner
    checkpoint: str | None
    submitted_at: datetime
    submissions: int
    last_submitted_at: datetime | None = None
    baseline: bool = False
    submission_id: int | None = None  # the entry behind the row (results export)
    selected: bool = False  # its submission is in the owner's final selection


def rank_best_per_owner(
    dataset: Dataset, scored: list[Submission], private: dict[int, float | None]
) -> list[BoardRow]:
    """Best submission per owner; once closed, the best by private score (the caller
    passes only each owner's final selection then).

    ``scored`` are the scored submissions, oldest first, as participants see them: while
    open, the best entry and the ranks go by the public score as shown (rounded when the
    organiser chose so), since ranking by the digits they cannot see would give those
    digits away through the order. ``private`` holds the private scores by id."""
    sign = -1.0 if metric_info(dataset.metric).higher_is_better else 1.0
    best: dict[str, Submission] = {}
    counts: dict[str, int] = {}
    latest: dict[str, datetime] = {}

    def shown(s: Submission) -> float:
        return (private[s.id] if dataset.closed else s.public_score) or 0.0

    for submission in scored:  # oldest first: an equal later score does not replace
        counts[submission.owner] = counts.get(submission.owner, 0) + 1
        latest[submission.owner] = submission.created_at
        current = best.get(submission.owner)
        if current is None or sign * shown(submission) < sign * shown(current):
            best[submission.owner] = submission

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
            submission_id=s.id,
            selected=s.selected,
        )
        for rank, s in enumerate(entries, start=1)
    ]
