"""Sessions, their numbering and their status transitions: the sessions part of :class:`SqlStore`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from nsml.store.base import Conflict, NotFound
from nsml.store.entities import Session, SessionStatus
from nsml.store.sql.base import SqlStoreBase, session_columns, utc
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import (
    CheckpointRow,
    DatasetRow,
    MetricRow,
    ReportBatchRow,
    SessionCounterRow,
    SessionRow,
    UserRow,
)


def session_from_columns(row: Any) -> Session:
    """A row of :func:`session_columns` as the entity."""
    return to_entity(Session, row, owner=row.owner_name, dataset=row.dataset_name)


def _next_number(orm: OrmSession, owner_id: int, dataset_id: int) -> int:
    """Increment the counter in the database, so concurrent servers never collide."""
    key = (SessionCounterRow.owner_id == owner_id, SessionCounterRow.dataset_id == dataset_id)
    for _ in range(3):
        number = orm.scalar(
            update(SessionCounterRow)
            .where(*key)
            .values(last_number=SessionCounterRow.last_number + 1)
            .returning(SessionCounterRow.last_number)
        )
        if number is not None:
            return int(number)
        try:
            with orm.begin_nested():
                orm.add(SessionCounterRow(owner_id=owner_id, dataset_id=dataset_id, last_number=1))
            return 1
        except IntegrityError:  # another transaction created the counter first
            continue
    raise Conflict("could not allocate a session number; try again")


class SessionsMixin(SqlStoreBase):
    def create_session(
        self,
        owner_id: int,
        dataset_id: int,
        entry: str,
        args: Sequence[str],
        description: str,
        gpus: int,
        token_hash: str,
        parent: str | None = None,
        resume_checkpoint: str | None = None,
        cpus: int = 0,
        memory_mb: int = 0,
        shm_mb: int = 0,
        driver: str | None = None,
    ) -> Session:
        with self._tx() as orm:
            number = _next_number(orm, owner_id, dataset_id)
            row = SessionRow(
                owner_id=owner_id,
                dataset_id=dataset_id,
                number=number,
                entry=entry,
                args=list(args),
                description=description,
                status=SessionStatus.QUEUED.value,
                gpus=gpus,
                cpus=cpus,
                memory_mb=memory_mb,
                shm_mb=shm_mb,
                token_hash=token_hash,
                created_at=datetime.now(timezone.utc),
                parent=parent,
                resume_checkpoint=resume_checkpoint,
                driver=driver,
            )
            orm.add(row)
            orm.flush()
            session_id = row.id
        return self.get_session_by_id(session_id)

    def get_session(self, owner: str, dataset: str, number: int) -> Session:
        with self._read() as orm:
            row = orm.execute(
                session_columns().where(
                    UserRow.name == owner, DatasetRow.name == dataset, SessionRow.number == number
                )
            ).first()
            if row is None:
                raise NotFound(f"session {owner}/{dataset}/{number} not found")
            return session_from_columns(row)

    def get_session_by_id(self, session_id: int) -> Session:
        with self._read() as orm:
            row = orm.execute(session_columns().where(SessionRow.id == session_id)).first()
            if row is None:
                raise NotFound(f"session #{session_id} not found")
            return session_from_columns(row)

    def ended_sessions(self, session_ids: Sequence[int]) -> set[int]:
        ended = set(session_ids)
        live = [s.value for s in SessionStatus if not s.is_terminal]
        with self._read() as orm:
            for start in range(0, len(session_ids), 500):  # under the databases' bind limits
                chunk = list(session_ids[start : start + 500])
                query = select(SessionRow.id).where(SessionRow.id.in_(chunk), SessionRow.status.in_(live))
                ended.difference_update(orm.scalars(query))
        return ended

    def session_for_token(self, token_hash: str) -> Session | None:
        with self._read() as orm:
            row = orm.execute(session_columns().where(SessionRow.token_hash == token_hash)).first()
            return None if row is None else session_from_columns(row)

    def list_sessions(
        self,
        owner: str | Sequence[str] | None = None,
        dataset: str | None = None,
        statuses: Iterable[SessionStatus] | None = None,
        limit: int | None = None,
    ) -> list[Session]:
        query = session_columns()
        if isinstance(owner, str):
            query = query.where(UserRow.name == owner)
        elif owner is not None:
            query = query.where(UserRow.name.in_(list(owner)))
        if dataset is not None:
            query = query.where(DatasetRow.name == dataset)
        if statuses is not None:
            query = query.where(SessionRow.status.in_([s.value for s in statuses]))
        query = query.order_by(SessionRow.created_at.desc(), SessionRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._read() as orm:
            return [session_from_columns(row) for row in orm.execute(query).all()]

    def count_sessions(self, statuses: Iterable[SessionStatus]) -> dict[str, int]:
        query = (
            select(UserRow.name, func.count())
            .join(SessionRow, SessionRow.owner_id == UserRow.id)
            .where(SessionRow.status.in_([s.value for s in statuses]))
            .group_by(UserRow.name)
        )
        with self._read() as orm:
            return {name: int(count) for name, count in orm.execute(query).all()}

    def transition_session(
        self,
        session_id: int,
        to: SessionStatus,
        *,
        from_statuses: Iterable[SessionStatus],
        exit_code: int | None = None,
        reason: str | None = None,
        at: datetime,
        driver: str | None = None,
    ) -> Session | None:
        values: dict[str, Any] = {"status": to.value}
        if to is SessionStatus.RUNNING:
            values.update(started_at=at, reason=None)
        if to.is_terminal:
            values.update(ended_at=at, exit_code=exit_code, reason=reason)
        with self._tx() as orm:
            if to.is_terminal:
                # the credit ticker may have billed the session up to a moment after ``at``
                # (it locked the row first): it ended then, so run time and bill agree
                charged = orm.execute(
                    select(SessionRow.charged_until).where(SessionRow.id == session_id).with_for_update()
                ).scalar_one_or_none()
                if charged is not None and utc(charged) > at:
                    values["ended_at"] = utc(charged)
            changed = _update_if_status(orm, session_id, from_statuses, values, driver)
        return self.get_session_by_id(session_id) if changed else None

    def requeue_session(
        self, session_id: int, token_hash: str, resume_checkpoint: str, driver: str | None = None
    ) -> Session | None:
        terminal = [s for s in SessionStatus if s.is_terminal]
        with self._tx() as orm:
            changed = _update_if_status(
                orm,
                session_id,
                terminal,
                {
                    "status": SessionStatus.QUEUED.value,
                    "token_hash": token_hash,
                    "resume_checkpoint": resume_checkpoint,
                    "exit_code": None,
                    "reason": None,
                    "ended_at": None,
                    "charged_until": None,  # charging restarts when it runs again
                    "driver": driver,
                    "stop_requested_at": None,
                },
            )
        return self.get_session_by_id(session_id) if changed else None

    def set_queue_reason(self, session_id: int, reason: str | None) -> None:
        with self._tx() as orm:
            _update_if_status(orm, session_id, [SessionStatus.QUEUED], {"reason": reason})

    def set_session_description(self, session_id: int, description: str) -> Session:
        with self._tx() as orm:
            orm.execute(update(SessionRow).where(SessionRow.id == session_id).values(description=description))
        return self.get_session_by_id(session_id)

    def set_session_token(self, session_id: int, token_hash: str) -> None:
        with self._tx() as orm:
            orm.execute(update(SessionRow).where(SessionRow.id == session_id).values(token_hash=token_hash))

    def delete_session(self, session_id: int) -> None:
        with self._tx() as orm:
            orm.execute(delete(MetricRow).where(MetricRow.session_id == session_id))
            orm.execute(delete(CheckpointRow).where(CheckpointRow.session_id == session_id))
            orm.execute(delete(ReportBatchRow).where(ReportBatchRow.session_id == session_id))
            orm.execute(delete(SessionRow).where(SessionRow.id == session_id))


def _update_if_status(
    orm: OrmSession,
    session_id: int,
    from_statuses: Iterable[SessionStatus],
    values: dict[str, Any],
    driver: str | None = None,
) -> bool:
    """Set ``values`` only while the session is in one of ``from_statuses`` (and driven by
    ``driver``, or by no server, when given); whether it was.

    The test sits in the UPDATE itself, so of two racing transitions exactly one wins.
    """
    query = update(SessionRow).where(
        SessionRow.id == session_id, SessionRow.status.in_([s.value for s in from_statuses])
    )
    if driver is not None:
        query = query.where(or_(SessionRow.driver == driver, SessionRow.driver.is_(None)))
    result = orm.execute(query.values(**values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
