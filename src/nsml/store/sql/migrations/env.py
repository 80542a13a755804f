"""Alembic environment: runs on the connection the store hands over (see engine.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from nsml.store.sql.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic revision --autogenerate` from a developer's shell
    url = config.get_main_option("sqlalchemy.url") or "sqlite:///nsml-dev.db"
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
