"""Competition phases, final selections and re-scores: the phases part of :class:`SqlStore`."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from nsml.store.base import Conflict, NotFound
from nsml.store.entities import Phase, Submission, SubmissionStatus
from nsml.store.sql.base import SqlStoreBase, utc
from nsml.store.sql.boards import bump_board
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import DatasetRow, PhaseRow, SubmissionRow

_PHASE_OPTIONS = frozenset({"starts_at", "ends_at", "blind", "daily_limit", "total_limit"})


def _phase_query() -> Any:
    return select(PhaseRow, DatasetRow.name).join(DatasetRow, DatasetRow.id == PhaseRow.dataset_id)


class PhasesMixin(SqlStoreBase):
    def create_phase(self, dataset_id: int, name: str, test_size: int, at: datetime, **options: Any) -> Phase:
        unknown = set(options) - _PHASE_OPTIONS
        if unknown:
            raise ValueError(f"unknown phase options: {', '.join(sorted(unknown))}")
        try:
            with self._tx() as orm:
                # serialise phase creation per dataset, so two never get the same index
                orm.execute(select(DatasetRow.id).where(DatasetRow.id == dataset_id).with_for_update())
                count = orm.execute(
                    select(func.count()).select_from(PhaseRow).where(PhaseRow.dataset_id == dataset_id)
                ).scalar_one()
                row = PhaseRow(
                    dataset_id=dataset_id, name=name, index=int(count), test_size=test_size, created_at=at
                )
                for key, value in options.items():
                    setattr(row, key, value)
                orm.add(row)
                orm.flush()
                phase_id = row.id
                bump_board(orm, dataset_id)
        except IntegrityError as exc:
            raise Conflict(f"phase {name!r} already exists") from exc
        return self._get_phase(phase_id)

    def _get_phase(self, phase_id: int) -> Phase:
        with self._read() as orm:
            found = orm.execute(_phase_query().where(PhaseRow.id == phase_id)).first()
            if found is None:
                raise NotFound(f"phase {phase_id} not found")
            return to_entity(Phase, found[0], dataset=found[1])

    def list_phases(self, dataset: str) -> list[Phase]:
        with self._read() as orm:
            rows = orm.execute(
                _phase_query().where(DatasetRow.name == dataset).order_by(PhaseRow.index)
            ).all()
            return [to_entity(Phase, row, dataset=name) for row, name in rows]

    def mark_phase_started(self, phase_id: int, at: datetime) -> Phase:
        with self._tx() as orm:
            orm.execute(update(PhaseRow).where(PhaseRow.id == phase_id).values(started_at=at))
            bump_board(orm, select(PhaseRow.dataset_id).where(PhaseRow.id == phase_id).scalar_subquery())
        return self._get_phase(phase_id)

    def select_submissions(
        self, dataset_id: int, owner_id: int, phase_id: int | None, ids: Collection[int]
    ) -> None:
        mine = (
            SubmissionRow.dataset_id == dataset_id,
            SubmissionRow.owner_id == owner_id,
            SubmissionRow.phase_id.is_(None) if phase_id is None else SubmissionRow.phase_id == phase_id,
        )
        with self._tx() as orm:
            orm.execute(update(SubmissionRow).where(*mine).values(selected=False))
            if ids:
                orm.execute(
                    update(SubmissionRow).where(*mine, SubmissionRow.id.in_(list(ids))).values(selected=True)
                )
            bump_board(orm, dataset_id)

    def carry_submission(
        self, submission_id: int, phase_id: int, total: int, at: datetime, driver: str | None = None
    ) -> Submission:
        with self._tx() as orm:
            source = orm.get(SubmissionRow, submission_id)
            if source is None:
                raise NotFound(f"submission {submission_id} not found")
            row = SubmissionRow(
                dataset_id=source.dataset_id,
                owner_id=source.owner_id,
                session_id=source.session_id,
                session_name=source.session_name,
                checkpoint=source.checkpoint,
                status=SubmissionStatus.QUEUED.value,
                progress=0,
                total=total,
                created_at=at,
                phase_id=phase_id,
                carried_from=source.id,
                selected=source.selected,
                driver=driver,  # the server whose re-scorer evaluates it
            )
            orm.add(row)
            orm.flush()
            carried_id = row.id
            bump_board(orm, source.dataset_id)
        return self.get_submission(carried_id)  # type: ignore[attr-defined, no-any-return]

    def record_rescore(
        self, submission_id: int, public: float, private: float, reason: str, at: datetime
    ) -> Submission:
        with self._tx() as orm:
            row = orm.get(SubmissionRow, submission_id, with_for_update=True)
            if row is None:
                raise NotFound(f"submission {submission_id} not found")
            history = list(row.score_history or [])
            if row.public_score is not None or row.private_score is not None:
                history.append(
                    {
                        "public_score": row.public_score,
                        "private_score": row.private_score,
                        "scored_at": utc(row.finished_at).isoformat() if row.finished_at else None,
                        "reason": reason,
                    }
                )
            row.score_history = history
            row.public_score, row.private_score = public, private
            row.status, row.finished_at, row.reason = SubmissionStatus.SCORED.value, at, None
            orm.flush()
            bump_board(orm, row.dataset_id)
        return self.get_submission(submission_id)  # type: ignore[attr-defined, no-any-return]
