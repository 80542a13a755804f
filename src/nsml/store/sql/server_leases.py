"""Servers, their leases, and claiming the work of a server that was taken over: the
leases part of :class:`SqlStore` (see :mod:`nsml.store.lease_base` for the rules)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update

from nsml.store.entities import ACTIVE_STATUSES, Server, Session, SessionStatus, SubmissionStatus
from nsml.store.sql.base import SqlStoreBase, session_columns
from nsml.store.sql.boards import bump_board
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import ServerRow, SessionRow, SubmissionRow
from nsml.store.sql.sessions import session_from_columns


def _server(row: ServerRow) -> Server:
    return to_entity(Server, row)


def _driven_by(column: Any, driver: str | None, by: str) -> Any:
    """Rows of ``driver`` that ``by`` may claim: rows of no server, its own (a restart),
    or those of a server ``by`` took over, for as long as that takeover stands."""
    if driver is None:
        return column.is_(None)
    if driver == by:
        return column == driver
    still_taken_over = exists().where(ServerRow.id == driver, ServerRow.taken_over_by == by)
    return (column == driver) & still_taken_over


class ServerLeasesMixin(SqlStoreBase):
    def register_server(
        self, server_id: str, url: str, host: str, pid: int, at: datetime, lease_s: float
    ) -> None:
        values = {
            "url": url,
            "host": host,
            "pid": pid,
            "started_at": at,
            "heartbeat_at": at,
            "lease_expires_at": at + timedelta(seconds=lease_s),
            "stopped_at": None,
            "taken_over_by": None,
            "taken_over_at": None,
        }
        with self._tx() as orm:
            row = orm.get(ServerRow, server_id, with_for_update=True)
            if row is None:
                orm.add(ServerRow(id=server_id, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)

    def get_server(self, server_id: str) -> Server | None:
        with self._read() as orm:
            row = orm.get(ServerRow, server_id)
            return None if row is None else _server(row)

    def list_servers(self) -> list[Server]:
        with self._read() as orm:
            rows = orm.scalars(select(ServerRow).order_by(ServerRow.started_at.desc(), ServerRow.id))
            return [_server(row) for row in rows]

    def renew_lease(self, server_id: str, at: datetime, lease_s: float) -> bool:
        with self._tx() as orm:
            result = orm.execute(
                update(ServerRow)
                .where(ServerRow.id == server_id, ServerRow.taken_over_by.is_(None))
                .values(heartbeat_at=at, lease_expires_at=at + timedelta(seconds=lease_s))
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release_lease(self, server_id: str, at: datetime) -> None:
        with self._tx() as orm:
            orm.execute(
                update(ServerRow)
                .where(ServerRow.id == server_id, ServerRow.taken_over_by.is_(None))
                .values(lease_expires_at=at, stopped_at=at)
            )

    def take_over_server(self, server_id: str, by: str, at: datetime) -> bool:
        with self._tx() as orm:
            result = orm.execute(
                update(ServerRow)
                .where(
                    ServerRow.id == server_id,
                    ServerRow.id != by,
                    ServerRow.lease_expires_at <= at,
                    ServerRow.taken_over_by.is_(None),
                )
                .values(taken_over_by=by, taken_over_at=at)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def claim_sessions(self, driver: str | None, by: str, statuses: Iterable[SessionStatus]) -> list[Session]:
        wanted = [s.value for s in statuses]
        with self._tx() as orm:
            claimed = orm.scalars(
                update(SessionRow)
                .where(SessionRow.status.in_(wanted), _driven_by(SessionRow.driver, driver, by))
                .values(driver=by)
                .returning(SessionRow.id)
            ).all()
        if not claimed:
            return []
        with self._read() as orm:
            query = session_columns().where(SessionRow.id.in_(list(claimed)))
            rows = orm.execute(query.order_by(SessionRow.created_at, SessionRow.id)).all()
            return [session_from_columns(row) for row in rows]

    def fail_driven_submissions(self, driver: str | None, by: str, reason: str, at: datetime) -> int:
        active = [SubmissionStatus.QUEUED.value, SubmissionStatus.RUNNING.value]
        failing = (SubmissionRow.status.in_(active), _driven_by(SubmissionRow.driver, driver, by))
        with self._tx() as orm:
            datasets = set(orm.scalars(select(SubmissionRow.dataset_id).where(*failing)))
            result = orm.execute(
                update(SubmissionRow)
                .where(*failing)
                .values(
                    status=SubmissionStatus.FAILED.value,
                    reason=reason,
                    finished_at=at,
                    inputs_sent_at=None,  # the platform's failure: it does not count
                    driver=by,
                )
            )
            for dataset_id in sorted(datasets):
                bump_board(orm, dataset_id)
            return int(result.rowcount)  # type: ignore[attr-defined]

    def request_session_stop(self, session_id: int, at: datetime) -> bool:
        with self._tx() as orm:
            result = orm.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.status.in_([s.value for s in ACTIVE_STATUSES]))
                .values(stop_requested_at=at)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def take_stop_requests(self, driver: str) -> list[int]:
        with self._tx() as orm:
            return list(
                orm.scalars(
                    update(SessionRow)
                    .where(
                        SessionRow.driver == driver,
                        SessionRow.stop_requested_at.is_not(None),
                        SessionRow.status.in_([s.value for s in ACTIVE_STATUSES]),
                    )
                    .values(stop_requested_at=None)
                    .returning(SessionRow.id)
                ).all()
            )
