"""Each dataset's board version: what lets a server reuse a board it ranked before.

Ranking a board reads every submission of the dataset; under a hackathon's load most
boards asked for are the same as the one before. Every write that changes what a board
shows raises the dataset's ``board_version`` in the same transaction, so a board cached
by any server is known to be current from the dataset row alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session as OrmSession

from nsml.store.sql.models import DatasetRow

# the columns of a submission the board reads: a change of any of them (not of a running
# submission's progress) raises its dataset's board version. Boards show scored
# submissions only: a status change raises it when the submission was or becomes scored.
BOARD_FIELDS = frozenset(
    {
        "status",
        "public_score",
        "private_score",
        "selected",
        "baseline",
        "phase_id",
        "score_history",
        "finished_at",
    }
)


def bump_board(orm: OrmSession, dataset_id: Any) -> None:
    """Raise the board version of ``dataset_id`` (a value or a scalar subquery), in the
    caller's transaction: after its write to the submissions, so locks come in one order."""
    orm.execute(
        update(DatasetRow)
        .where(DatasetRow.id == dataset_id)
        .values(board_version=DatasetRow.board_version + 1)
    )
