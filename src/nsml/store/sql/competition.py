"""Submissions and their limits: the competition part of :class:`SqlStore`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session as OrmSession

from nsml.evaluation.limits import SubmissionUsage, daily_window_start, limit_refusal
from nsml.store.base import LimitReached, NotFound
from nsml.store.entities import Dataset, Session, Submission, SubmissionStatus
from nsml.store.sql.base import SqlStoreBase, utc
from nsml.store.sql.boards import BOARD_FIELDS, bump_board
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import DatasetRow, PhaseRow, SubmissionRow, UserRow


def _submission_query() -> Any:
    """Plain columns, not ORM objects: a board reads every submission of a dataset, and
    building an ORM instance per row cost more than the query itself."""
    return (
        select(
            *SubmissionRow.__table__.columns,
            DatasetRow.name.label("dataset_name"),
            UserRow.name.label("owner_name"),
            PhaseRow.name.label("phase_name"),
        )
        .join(DatasetRow, DatasetRow.id == SubmissionRow.dataset_id)
        .join(UserRow, UserRow.id == SubmissionRow.owner_id)
        .outerjoin(PhaseRow, PhaseRow.id == SubmissionRow.phase_id)
    )


def _dataset_of(submission_id: int) -> Any:
    return select(SubmissionRow.dataset_id).where(SubmissionRow.id == submission_id).scalar_subquery()


def _submission(row: Any) -> Submission:
    return to_entity(Submission, row, dataset=row.dataset_name, owner=row.owner_name, phase=row.phase_name)


def _count(
    orm: OrmSession, dataset_id: int, owner_id: int, since: datetime | None, phase_id: int | None = None
) -> tuple[int, datetime | None]:
    query = select(func.count(), func.min(SubmissionRow.created_at)).where(
        SubmissionRow.dataset_id == dataset_id,
        SubmissionRow.owner_id == owner_id,
        # a failure counts once the test inputs reached the participant's code: what it
        # fails with (and when) could otherwise carry them out for free
        # (a cancelled one likewise)
        or_(
            SubmissionRow.status.not_in([SubmissionStatus.FAILED.value, SubmissionStatus.CANCELLED.value]),
            SubmissionRow.inputs_sent_at.is_not(None),
        ),
        SubmissionRow.carried_from.is_(None),  # carried into a new phase by the platform: free
    )
    if phase_id is not None:  # each phase has its own limits
        query = query.where(SubmissionRow.phase_id == phase_id)
    if since is not None:
        query = query.where(SubmissionRow.created_at > since)
    count, oldest = orm.execute(query).one()
    return int(count), utc(oldest)


def _check_limits(
    orm: OrmSession, dataset: Dataset, owner_id: int, at: datetime, phase_id: int | None
) -> None:
    """Raise :class:`LimitReached` if the owner's next submission is over the dataset's limits.

    Only the counts a set limit needs are queried.
    """
    used_total, used_today, oldest = 0, 0, None
    if dataset.total_limit is not None:
        used_total, _ = _count(orm, dataset.id, owner_id, None, phase_id)
    if dataset.daily_limit is not None:
        used_today, oldest = _count(orm, dataset.id, owner_id, daily_window_start(at), phase_id)
    usage = SubmissionUsage(used_total, used_today, oldest)
    refused = limit_refusal(dataset.name, dataset.daily_limit, dataset.total_limit, usage, at)
    if refused is not None:
        raise LimitReached(refused.message, refused.next_allowed)


class CompetitionMixin(SqlStoreBase):
    def create_submission(
        self,
        dataset: Dataset,
        owner_id: int,
        session: Session,
        checkpoint: str,
        total: int,
        at: datetime,
        phase_id: int | None = None,
        driver: str | None = None,
    ) -> Submission:
        with self._tx() as orm:
            # serialise one owner's submissions on PostgreSQL (SQLite already holds the write lock)
            orm.execute(select(UserRow.id).where(UserRow.id == owner_id).with_for_update())
            _check_limits(orm, dataset, owner_id, at, phase_id)
            row = SubmissionRow(
                dataset_id=dataset.id,
                owner_id=owner_id,
                session_id=session.id,
                session_name=session.name,
                checkpoint=checkpoint,
                status=SubmissionStatus.QUEUED.value,
                progress=0,
                total=total,
                created_at=at,
                phase_id=phase_id,
                driver=driver,
            )
            orm.add(row)
            orm.flush()
            submission_id = row.id  # queued: not on any board until it is scored
        return self.get_submission(submission_id)

    def count_submissions(
        self, dataset_id: int, owner_id: int, since: datetime | None, phase_id: int | None = None
    ) -> tuple[int, datetime | None]:
        with self._read() as orm:
            return _count(orm, dataset_id, owner_id, since, phase_id)

    def update_submission(self, submission_id: int, **values: Any) -> Submission:
        if "status" in values:
            values["status"] = SubmissionStatus(values["status"]).value
        with self._tx() as orm:
            changes_board = bool(BOARD_FIELDS.intersection(values) - {"status"})
            if not changes_board and "status" in values:  # on a board only while scored
                before = orm.scalar(select(SubmissionRow.status).where(SubmissionRow.id == submission_id))
                changes_board = SubmissionStatus.SCORED.value in (before, values["status"])
            orm.execute(update(SubmissionRow).where(SubmissionRow.id == submission_id).values(**values))
            if changes_board:
                bump_board(orm, _dataset_of(submission_id))
        return self.get_submission(submission_id)

    def get_submission(self, submission_id: int) -> Submission:
        with self._read() as orm:
            row = orm.execute(_submission_query().where(SubmissionRow.id == submission_id)).first()
            if row is None:
                raise NotFound(f"submission {submission_id} not found")
            return _submission(row)

    def list_submissions(self, dataset: str, owner: str | None = None) -> list[Submission]:
        query = _submission_query().where(DatasetRow.name == dataset)
        if isinstance(owner, str):
            query = query.where(UserRow.name == owner)
        elif owner is not None:
            query = query.where(UserRow.name.in_(list(owner)))
        with self._read() as orm:
            rows = orm.execute(query.order_by(SubmissionRow.created_at, SubmissionRow.id)).all()
            return [_submission(row) for row in rows]
