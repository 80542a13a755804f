"""Engine creation and schema migration.

SQLite is opened in WAL mode. Write transactions start with ``BEGIN IMMEDIATE``: the
server runs request handlers and the runner's callbacks on several threads, and an
immediate write lock turns what would be ``database is locked`` errors half-way through a
transaction into a short wait at its start. Read transactions (an engine carrying the
:data:`READ_ONLY` execution option) start with a plain deferred ``BEGIN``: under WAL they
read a snapshot beside a writer, so a board or ``ps`` never queues behind a metric insert.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect

READ_ONLY = "nsml_read_only"  # execution option: this transaction only reads


# Connections the pool keeps open. The server answers requests on up to 40 threads (the
# thread pool's default) beside its scheduler's; a connection opened beyond the pool is
# closed again after one use, and for SQLite each opening re-runs its PRAGMAs, so under
# a hackathon's load a pool smaller than the threads spends its time connecting. A
# PostgreSQL server serves 100 connections by default: three API servers fit beside psql.
POOL_SIZE, MAX_OVERFLOW = 20, 30
PG_POOL_SIZE, PG_MAX_OVERFLOW = 20, 10


def make_engine(db_url: str) -> Engine:
    if db_url.startswith("sqlite"):
        # no pre-ping: a file's connection does not go stale the way a server's does
        engine = create_engine(
            db_url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
            reads_only = connection.get_execution_options().get(READ_ONLY, False)
            connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")

        return engine
    # pre-ping: a PostgreSQL restarted under the server leaves every pooled connection dead
    return create_engine(db_url, pool_pre_ping=True, pool_size=PG_POOL_SIZE, max_overflow=PG_MAX_OVERFLOW)


MIGRATION_LOCK = 0x6E736D6C  # "nsml": the advisory lock key PostgreSQL migrations hold


def migrate(engine: Engine) -> bool:
    """Bring the schema to the latest revision; True when the database was empty before."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # servers starting together migrate one at a time
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        was_empty = not inspect(connection).has_table("alembic_version")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return was_empty
