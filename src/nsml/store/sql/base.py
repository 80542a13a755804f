"""What every domain mixin of :class:`~nsml.store.sql.store.SqlStore` stands on.

The engine, the one-transaction-per-call scope, UTC normalisation and the joined
queries more than one domain reads through live here, so the mixins share one copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, overload

from sqlalchemy import select
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from nsml.store.sql.engine import READ_ONLY, make_engine, migrate
from nsml.store.sql.models import DatasetRow, SessionRow, UserRow


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything the store stores is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def session_query() -> Any:
    """Sessions with their owner's and dataset's names, the parts of a session's name."""
    return (
        select(SessionRow, UserRow.name, DatasetRow.name)
        .join(UserRow, UserRow.id == SessionRow.owner_id)
        .join(DatasetRow, DatasetRow.id == SessionRow.dataset_id)
    )


def session_columns() -> Any:
    """What :func:`session_query` reads, as plain columns: ``ps`` and every session
    lookup read through it, and an ORM instance per row cost more than the query. For
    reads; a transaction that changes the session it read uses :func:`session_query`."""
    return (
        select(
            *SessionRow.__table__.columns,
            UserRow.name.label("owner_name"),
            DatasetRow.name.label("dataset_name"),
        )
        .join(UserRow, UserRow.id == SessionRow.owner_id)
        .join(DatasetRow, DatasetRow.id == SessionRow.dataset_id)
    )


def account_name(orm: OrmSession, account_id: int) -> str | None:
    """The name of an account (a person or a team) from its id."""
    return orm.scalar(select(UserRow.name).where(UserRow.id == account_id))


class SqlStoreBase:
    """Opens (and migrates) the database; each public method of a mixin is one ``_tx()`` or ``_read()``."""

    def __init__(self, db_url: str) -> None:
        self.engine = make_engine(db_url)
        self._created = migrate(self.engine)
        self._orm_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def created(self) -> bool:
        return self._created

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[OrmSession]:
        """A write transaction: on SQLite it takes the write lock at its start."""
        with self._orm_sessions.begin() as orm:
            yield orm

    @contextmanager
    def _read(self) -> Iterator[OrmSession]:
        """A read transaction: on SQLite a deferred one, which never waits for a writer.

        Only for methods that never write; a deferred transaction that later writes can
        fail with ``database is locked`` instead of waiting.
        """
        with self._read_sessions.begin() as orm:
            yield orm
