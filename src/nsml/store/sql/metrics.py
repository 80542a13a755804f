"""Reported metrics and checkpoint records: the metrics part of :class:`SqlStore`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session as OrmSession

from nsml.store.base import NotFound
from nsml.store.entities import Checkpoint, MetricPoint
from nsml.store.sql.base import SqlStoreBase
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import CheckpointRow, MetricRow, ReportBatchRow, SessionRow


def _metric_rows(session_id: int, reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (report, metric); a non-numeric value is kept as a key without a value."""
    rows: list[dict[str, Any]] = []
    for report in reports:
        for key, value in report["metrics"].items():
            rows.append(
                {
                    "session_id": session_id,
                    "step": report["step"],
                    "key": key,
                    "value": float(value) if isinstance(value, (int, float)) else None,
                    "scope": report.get("scope"),
                    "created_at": report["time"],
                }
            )
    return rows


def _lock_session(orm: OrmSession, session_id: int) -> None:
    """Hold the session's row: writes of one session that must not interleave take turns."""
    orm.execute(select(SessionRow.id).where(SessionRow.id == session_id).with_for_update())


def _locked_checkpoint(orm: OrmSession, session_id: int, name: str) -> CheckpointRow | None:
    """A session's checkpoint by name, holding the session's row.

    Saves of one session take turns on its row, so two saves of one name never both insert.
    """
    _lock_session(orm, session_id)
    return orm.scalar(
        select(CheckpointRow).where(CheckpointRow.session_id == session_id, CheckpointRow.name == name)
    )


class MetricsMixin(SqlStoreBase):
    def add_reports(
        self, session_id: int, reports: Sequence[dict[str, Any]], batch_id: str | None = None
    ) -> bool:
        if not reports:
            return True
        rows = _metric_rows(session_id, reports)
        summary: dict[str, Any] | None = None
        for report in reports:
            if report.get("summary"):
                summary = {"step": report["step"], **report["metrics"]}
        last = reports[-1]
        with self._tx() as orm:
            if batch_id is not None:
                # batches of one session take turns on its row, so a batch sent twice at
                # once is seen by the second of them
                _lock_session(orm, session_id)
                seen = select(ReportBatchRow.batch_id).where(
                    ReportBatchRow.session_id == session_id, ReportBatchRow.batch_id == batch_id
                )
                if orm.scalar(seen) is not None:
                    return False
                orm.add(ReportBatchRow(session_id=session_id, batch_id=batch_id))
            if rows:
                orm.execute(insert(MetricRow), rows)
            values: dict[str, Any] = {"last_report": {"step": last["step"], **last["metrics"]}}
            if summary is not None:
                values["summary"] = summary
            orm.execute(update(SessionRow).where(SessionRow.id == session_id).values(**values))
        return True

    def list_metrics(self, session_id: int) -> list[MetricPoint]:
        with self._read() as orm:
            rows = orm.scalars(
                select(MetricRow)
                .where(MetricRow.session_id == session_id)
                .order_by(MetricRow.key, MetricRow.step, MetricRow.id)
            ).all()
            return [to_entity(MetricPoint, row) for row in rows]

    def latest_metrics(self, session_ids: Sequence[int]) -> dict[int, dict[str, float]]:
        found: dict[int, dict[str, float]] = {session_id: {} for session_id in session_ids}
        with self._tx() as orm:
            for start in range(0, len(session_ids), 500):  # stay under the databases' bind limits
                chunk = list(session_ids[start : start + 500])
                last = (
                    select(func.max(MetricRow.id))
                    .where(MetricRow.session_id.in_(chunk), MetricRow.value.is_not(None))
                    .group_by(MetricRow.session_id, MetricRow.key)
                )
                rows = orm.execute(
                    select(MetricRow.session_id, MetricRow.key, MetricRow.value).where(MetricRow.id.in_(last))
                )
                for session_id, key, value in rows:
                    if value is not None:  # never: only numeric points were chosen
                        found[session_id][key] = value
        return found

    def put_checkpoint(
        self,
        session_id: int,
        name: str,
        elapsed_s: float | None,
        summary: dict[str, Any] | None,
        size_bytes: int,
        at: datetime,
    ) -> Checkpoint:
        with self._tx() as orm:
            row = _locked_checkpoint(orm, session_id, name)
            if row is None:
                row = CheckpointRow(session_id=session_id, name=name)
                orm.add(row)
            row.created_at = at
            row.elapsed_s = elapsed_s
            row.summary = summary
            row.size_bytes = size_bytes
            orm.flush()
            return to_entity(Checkpoint, row)

    def list_checkpoints(self, session_id: int) -> list[Checkpoint]:
        with self._read() as orm:
            rows = orm.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.session_id == session_id)
                .order_by(CheckpointRow.created_at, CheckpointRow.id)
            ).all()
            return [to_entity(Checkpoint, row) for row in rows]

    def delete_checkpoint(self, session_id: int, name: str) -> bool:
        with self._tx() as orm:
            result = orm.execute(
                delete(CheckpointRow).where(
                    CheckpointRow.session_id == session_id, CheckpointRow.name == name
                )
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def get_checkpoint(self, session_id: int, name: str) -> Checkpoint:
        with self._read() as orm:
            row = orm.scalar(
                select(CheckpointRow).where(
                    CheckpointRow.session_id == session_id, CheckpointRow.name == name
                )
            )
            if row is None:
                raise NotFound(f"checkpoint {name!r} not found")
            return to_entity(Checkpoint, row)
