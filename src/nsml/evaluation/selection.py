"""Which submissions count for the private ranking: each participant's final selection.

Kaggle's rule: a participant picks up to ``max_selected`` submissions; who picks none is
judged on their best ``max_selected`` by public score (earlier first on a tie), so
forgetting to choose never leaves anybody off the final board.
"""

from __future__ import annotations

from collections.abc import Iterable

from nsml.store.entities import Submission, SubmissionStatus


def final_selection(submissions: Iterable[Submission], max_selected: int, higher_is_better: bool) -> set[int]:
    """Ids of the submissions that count, over every owner among ``submissions``."""
    sign = -1.0 if higher_is_better else 1.0
    by_owner: dict[str, list[Submission]] = {}
    for s in submissions:
        if s.status is SubmissionStatus.SCORED and s.public_score is not None:
            by_owner.setdefault(s.owner, []).append(s)
    chosen: set[int] = set()
    for mine in by_owner.values():
        picked = [s.id for s in mine if s.selected]
        if picked:
            chosen.update(picked)
            continue
        ranked = sorted(mine, key=lambda s: (sign * (s.public_score or 0.0), s.created_at, s.id))
        chosen.update(s.id for s in ranked[: max(1, max_selected)])
    return chosen
