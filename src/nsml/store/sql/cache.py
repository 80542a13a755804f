"""``nsml.cache`` entries and storage accounting: the cache part of :class:`SqlStore`."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from nsml.store.entities import CacheEntry
from nsml.store.sql.base import SqlStoreBase, account_name
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import CacheEntryRow, CheckpointRow, SessionRow


def _cache(orm: OrmSession, row: CacheEntryRow) -> CacheEntry:
    return to_entity(CacheEntry, row, owner=account_name(orm, row.owner_id) or "")


class CacheMixin(SqlStoreBase):
    def get_cache(self, owner_id: int, key: str, hit: bool = False) -> CacheEntry | None:
        with self._tx() as orm:
            row = orm.scalar(
                select(CacheEntryRow).where(CacheEntryRow.owner_id == owner_id, CacheEntryRow.key == key)
            )
            if row is None:
                return None
            if hit:  # counted in the database, so concurrent hits all count
                orm.execute(
                    update(CacheEntryRow)
                    .where(CacheEntryRow.id == row.id)
                    .values(hits=CacheEntryRow.hits + 1, last_used_at=datetime.now(timezone.utc))
                    .execution_options(synchronize_session=False)
                )
                orm.refresh(row)
            return _cache(orm, row)

    def add_cache(
        self, owner_id: int, key: str, function: str, dataset: str | None, size_bytes: int
    ) -> tuple[CacheEntry, bool]:
        now = datetime.now(timezone.utc)
        try:
            with self._tx() as orm:
                row = CacheEntryRow(
                    owner_id=owner_id,
                    key=key,
                    function=function[:255],
                    dataset=dataset,
                    size_bytes=size_bytes,
                    created_at=now,
                    last_used_at=now,
                    hits=0,
                )
                orm.add(row)
                orm.flush()
                return _cache(orm, row), True
        except IntegrityError:
            existing = self.get_cache(owner_id, key)
            assert existing is not None
            return existing, False

    def list_cache(self, owner_id: int) -> list[CacheEntry]:
        with self._read() as orm:
            rows = orm.scalars(
                select(CacheEntryRow)
                .where(CacheEntryRow.owner_id == owner_id)
                .order_by(CacheEntryRow.created_at)
            )
            return [_cache(orm, row) for row in rows]

    def delete_cache(self, owner_id: int, key: str) -> bool:
        with self._tx() as orm:
            result = orm.execute(
                delete(CacheEntryRow).where(CacheEntryRow.owner_id == owner_id, CacheEntryRow.key == key)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def storage_used(self, owner_id: int) -> int:
        with self._read() as orm:
            checkpoints = orm.scalar(
                select(func.coalesce(func.sum(CheckpointRow.size_bytes), 0))
                .join(SessionRow, SessionRow.id == CheckpointRow.session_id)
                .where(SessionRow.owner_id == owner_id)
            )
            cache = orm.scalar(
                select(func.coalesce(func.sum(CacheEntryRow.size_bytes), 0)).where(
                    CacheEntryRow.owner_id == owner_id
                )
            )
            return int(checkpoints or 0) + int(cache or 0)
