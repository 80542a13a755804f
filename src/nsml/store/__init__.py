"""The platform's persistent state behind one interface (:class:`AbstractStore`).

Only the server imports this package. :func:`open_store` picks the implementation from
the database URL; today SQLite and PostgreSQL both go through SQLAlchemy.
"""

from nsml.store.base import AbstractStore, Conflict, LimitReached, NotFound
from nsml.store.entities import (
    CacheEntry,
    Checkpoint,
    CreditEvent,
    Dataset,
    MetricPoint,
    Phase,
    Role,
    Session,
    SessionStatus,
    SharedResource,
    Submission,
    SubmissionStatus,
    User,
)


def store_exists(db_url: str) -> bool:
    """Whether ``db_url`` holds a store already; looking creates and migrates nothing."""
    from sqlalchemy import inspect

    from nsml.store.sql.engine import make_engine

    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            return inspect(connection).has_table("alembic_version")
    finally:
        engine.dispose()


def open_store(db_url: str) -> AbstractStore:
    """Open (and migrate to the latest schema) the store at ``db_url``."""
    from nsml.store.sql.store import SqlStore

    return SqlStore(db_url)


__all__ = [
    "store_exists",
    "AbstractStore",
    "CacheEntry",
    "Checkpoint",
    "Conflict",
    "CreditEvent",
    "LimitReached",
    "Dataset",
    "MetricPoint",
    "NotFound",
    "Phase",
    "Role",
    "Session",
    "SessionStatus",
    "SharedResource",
    "Submission",
    "SubmissionStatus",
    "User",
    "open_store",
]
