"""Baselines on a board: the organiser's reference entries, shown but never ranked.

As Kaggle's benchmark rows, a baseline sits where its score would place it, so
participants see at a glance whether they beat it, yet it takes no rank: the
participants' ranks (and prizes) are the same as without it. A participant who equals
a baseline's score is listed above it.
"""

from __future__ import annotations

from nsml.evaluation.board import BoardRow
from nsml.evaluation.metrics import metric_info
from nsml.store.entities import Dataset, Submission


def place_baselines(
    dataset: Dataset, ranked: list[BoardRow], baselines: list[Submission], private: dict[int, float | None]
) -> list[BoardRow]:
    """``ranked`` (best first) with a row for each scored baseline submission slotted in.

    ``baselines`` are seen as participants see them (public score rounded); ``private``
    holds the private scores by id, which order the board once the dataset is closed."""
    sign = -1.0 if metric_info(dataset.metric).higher_is_better else 1.0

    def shown(s: Submission) -> float:
        return (private[s.id] if dataset.closed else s.public_score) or 0.0

    rows = list(ranked)
    for s in sorted(baselines, key=lambda b: (sign * shown(b), b.created_at, b.id)):
        row = BoardRow(
            None, s.owner, shown(s), s.session_name, s.checkpoint, s.created_at, 1, s.created_at,
            baseline=True, submission_id=s.id,
        )  # fmt: skip
        # after every row that scores as well or better (participants first on a tie)
        at = next((i for i, r in enumerate(rows) if sign * (r.score or 0.0) > sign * shown(s)), len(rows))
        rows.insert(at, row)
    return rows
