"""Datasets and their competition options: the datasets part of :class:`SqlStore`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from nsml.store.base import Conflict, NotFound
from nsml.store.entities import Dataset
from nsml.store.sql.base import SqlStoreBase
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import DatasetRow, UserRow

# what update_dataset may set: the organiser's competition options, never the data's shape
_COMPETITION_OPTIONS = frozenset(
    {
        "public_fraction",
        "daily_limit",
        "total_limit",
        "eval_timeout_s",
        "closed_at",
        "round_public",
        "description",
        "rules",
        "deadline",
        "max_selected",
    }
)


def _dataset_query() -> Any:
    """Datasets not removed, with their owner's name."""
    return (
        select(DatasetRow, UserRow.name)
        .join(UserRow, UserRow.id == DatasetRow.owner_id)
        .where(DatasetRow.removed_at.is_(None))
    )


class DatasetsMixin(SqlStoreBase):
    def create_dataset(
        self,
        name: str,
        owner_id: int,
        metric: str,
        description: str,
        train_size: int,
        test_size: int,
        size_bytes: int,
    ) -> Dataset:
        try:
            with self._tx() as orm:
                orm.add(
                    DatasetRow(
                        name=name,
                        owner_id=owner_id,
                        metric=metric,
                        description=description,
                        train_size=train_size,
                        test_size=test_size,
                        size_bytes=size_bytes,
                        created_at=datetime.now(timezone.utc),
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"dataset {name!r} already exists") from exc
        return self.get_dataset(name)

    def get_dataset(self, name: str) -> Dataset:
        with self._tx() as orm:
            row = orm.execute(_dataset_query().where(DatasetRow.name == name)).first()
            if row is None:
                raise NotFound(f"dataset {name!r} not found")
            dataset, owner = row
            return to_entity(Dataset, dataset, owner=owner)

    def list_datasets(self) -> list[Dataset]:
        with self._tx() as orm:
            rows = orm.execute(_dataset_query().order_by(DatasetRow.name)).all()
            return [to_entity(Dataset, dataset, owner=owner) for dataset, owner in rows]

    def update_dataset(self, name: str, **options: Any) -> Dataset:
        unknown = set(options) - _COMPETITION_OPTIONS
        if unknown:
            raise ValueError(f"unknown dataset options: {', '.join(sorted(unknown))}")
        with self._tx() as orm:
            result = orm.execute(_live(name).values(**options))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFound(f"dataset {name!r} not found")
        return self.get_dataset(name)

    def bump_dataset_version(
        self, name: str, version: int, train_size: int, test_size: int, size_bytes: int
    ) -> Dataset:
        with self._tx() as orm:
            result = orm.execute(
                _live(name)
                .where(DatasetRow.version == version)
                .values(
                    version=version + 1, train_size=train_size, test_size=test_size, size_bytes=size_bytes
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(f"dataset {name!r} is no longer at version {version}")
        return self.get_dataset(name)

    def remove_dataset(self, name: str, at: datetime) -> None:
        with self._tx() as orm:
            result = orm.execute(_live(name).values(removed_at=at))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFound(f"dataset {name!r} not found")

    def dataset_was_removed(self, name: str) -> bool:
        with self._tx() as orm:
            removed = orm.execute(
                select(DatasetRow.id).where(DatasetRow.name == name, DatasetRow.removed_at.is_not(None))
            ).first()
            return removed is not None


def _live(name: str) -> Any:
    """An UPDATE of the dataset ``name`` unless it was removed."""
    return update(DatasetRow).where(DatasetRow.name == name, DatasetRow.removed_at.is_(None))
