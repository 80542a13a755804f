"""Published shared resources: the shared part of :class:`SqlStore`."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from nsml.store.base import Conflict, NotFound
from nsml.store.entities import SharedResource
from nsml.store.sql.base import SqlStoreBase, account_name
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import SharedResourceRow


def _shared(orm: OrmSession, row: SharedResourceRow) -> SharedResource:
    return to_entity(SharedResource, row, owner=account_name(orm, row.owner_id) or "")


class SharedResourcesMixin(SqlStoreBase):
    def put_shared(
        self,
        name: str,
        owner_id: int,
        description: str,
        size_bytes: int,
        files: int,
        version: str,
        replace: bool,
    ) -> tuple[SharedResource, str | None]:
        now = datetime.now(timezone.utc)
        try:
            with self._tx() as orm:
                row = orm.scalar(
                    select(SharedResourceRow).where(SharedResourceRow.name == name).with_for_update()
                )
                previous: str | None = None
                if row is None:
                    row = SharedResourceRow(name=name, owner_id=owner_id, created_at=now)
                    orm.add(row)
                elif not replace:
                    raise Conflict(f"shared resource {name!r} exists")
                else:
                    previous = row.version
                row.description = description[:255]
                row.size_bytes, row.files, row.version, row.updated_at = size_bytes, files, version, now
                orm.flush()
                return _shared(orm, row), previous
        except IntegrityError:  # another publisher created the name at the same moment
            raise Conflict(f"shared resource {name!r} exists") from None

    def get_shared(self, name: str) -> SharedResource:
        with self._read() as orm:
            row = orm.scalar(select(SharedResourceRow).where(SharedResourceRow.name == name))
            if row is None:
                raise NotFound(f"shared resource {name!r}")
            return _shared(orm, row)

    def list_shared(self) -> list[SharedResource]:
        with self._read() as orm:
            rows = orm.scalars(select(SharedResourceRow).order_by(SharedResourceRow.name))
            return [_shared(orm, row) for row in rows]

    def delete_shared(self, name: str) -> SharedResource | None:
        with self._tx() as orm:
            row = orm.scalar(
                select(SharedResourceRow).where(SharedResourceRow.name == name).with_for_update()
            )
            if row is None:
                return None
            removed = _shared(orm, row)
            orm.delete(row)
            return removed


__all__ = ["SharedResourcesMixin"]
