"""Balances, daily allowances and per-minute session charges: the credits part of :class:`SqlStore`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session as OrmSession

from nsml.store.base import NotFound
from nsml.store.entities import CreditEvent, SessionStatus
from nsml.store.sql.base import SqlStoreBase, session_query, utc
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import CreditEventRow, SessionRow, UserRow


def _change_balance(orm: OrmSession, account_id: int, delta: float, reason: str, at: datetime) -> float:
    """Add ``delta`` in one statement (so concurrent changes add up) and record why."""
    balance = orm.scalar(
        update(UserRow)
        .where(UserRow.id == account_id)
        .values(credits=UserRow.credits + delta)
        .returning(UserRow.credits)
    )
    if balance is None:
        raise NotFound(f"account #{account_id} not found")
    orm.add(CreditEventRow(account_id=account_id, delta=delta, reason=reason[:255], created_at=at))
    return float(balance)


def _charge(orm: OrmSession, session: SessionRow, owner: str, dataset: str, until: datetime) -> float | None:
    """Bill a locked session row from its last charge to ``until``; the new balance, if billed."""
    since = utc(session.charged_until) or utc(session.started_at)
    if since is None or until <= since:
        return None
    session.charged_until = until
    cost = (until - since).total_seconds() / 60 * max(session.gpus, 1)
    name = f"{owner}/{dataset}/{session.number}"
    return _change_balance(orm, session.owner_id, -cost, f"session #{session.id} {name}", until)


class CreditsMixin(SqlStoreBase):
    def grant_credits(self, account_id: int, delta: float, reason: str, at: datetime) -> float:
        with self._tx() as orm:
            return _change_balance(orm, account_id, delta, reason, at)

    def set_daily_credits(self, account_id: int, amount: float | None) -> None:
        with self._tx() as orm:
            orm.execute(
                update(UserRow)
                .where(UserRow.id == account_id)
                .values(daily_credits=amount, topped_up_on=None)
            )

    def top_up_daily(self, today: str, at: datetime) -> int:
        with self._tx() as orm:
            rows = orm.scalars(
                select(UserRow)
                .where(
                    UserRow.daily_credits.is_not(None),
                    (UserRow.topped_up_on.is_(None)) | (UserRow.topped_up_on != today),
                )
                .with_for_update()
            ).all()
            for row in rows:
                missing = max(0.0, float(row.daily_credits or 0) - row.credits)
                if missing > 0:
                    _change_balance(orm, row.id, missing, f"daily allowance {today}", at)
                row.topped_up_on = today
            return len(rows)

    def charge_running(self, at: datetime) -> list[tuple[int, str, float]]:
        exhausted: list[tuple[int, str, float]] = []
        with self._tx() as orm:
            rows = orm.execute(
                session_query()
                .where(SessionRow.status == SessionStatus.RUNNING.value)
                .with_for_update(of=SessionRow)
            ).all()
            for session, owner, dataset in rows:
                balance = _charge(orm, session, owner, dataset, at)
                if balance is not None and balance <= 0:
                    exhausted.append((session.id, owner, balance))
        return exhausted

    def charge_session(self, session_id: int, until: datetime) -> float | None:
        with self._tx() as orm:
            row = orm.execute(
                session_query().where(SessionRow.id == session_id).with_for_update(of=SessionRow)
            ).one_or_none()
            if row is None:
                return None
            session, owner, dataset = row
            return _charge(orm, session, owner, dataset, until)

    def credit_events(self, account_id: int, limit: int) -> list[CreditEvent]:
        with self._read() as orm:
            rows = orm.scalars(
                select(CreditEventRow)
                .where(CreditEventRow.account_id == account_id)
                .order_by(CreditEventRow.id.desc())
                .limit(limit)
            )
            return [to_entity(CreditEvent, row) for row in rows]
