"""The SQLAlchemy store. Each public method is one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import sessionmaker

from nsml.store.base import AbstractStore, Conflict, LimitReached, NotFound
from nsml.store.entities import (
    CacheEntry,
    Checkpoint,
    CreditEvent,
    Dataset,
    MetricPoint,
    Role,
    Session,
    SessionStatus,
    Submission,
    SubmissionStatus,
    User,
)
from nsml.store.sql.engine import make_engine, migrate
from nsml.store.sql.models import (
    ApiTokenRow,
    CacheEntryRow,
    CheckpointRow,
    CreditEventRow,
    DatasetRow,
    InviteRow,
    MetricRow,
    SessionCounterRow,
    SessionRow,
    SubmissionRow,
    UserRow,
)
from nsml.store.sql.shared import SharedResourcesMixin

# submissions that count against the limits only if the test inputs reached the script
_ENDED_EARLY = (SubmissionStatus.FAILED.value, SubmissionStatus.CANCELLED.value)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything the store stores is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


class SqlStore(SharedResourcesMixin, AbstractStore):
    def __init__(self, db_url: str) -> None:
        self.engine = make_engine(db_url)
        self.created = migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[OrmSession]:
        with self._sessions.begin() as orm:
            yield orm

    # users, teams and tokens -----------------------------------------------------------
    @staticmethod
    def _user(orm: OrmSession, row: UserRow) -> User:
        team = orm.scalar(select(UserRow.name).where(UserRow.id == row.team_id)) if row.team_id else None
        return User(
            id=row.id,
            name=row.name,
            created_at=_utc(row.created_at),  # type: ignore[arg-type]
            kind=row.kind,
            role=Role(row.role),
            team=team,
            disabled=row.disabled_at is not None,
            password_hash=row.password_hash,
            credits=row.credits,
            daily_credits=row.daily_credits,
            storage_quota_mb=row.storage_quota_mb,
            webhook_url=row.webhook_url,
        )

    def get_or_create_user(self, name: str) -> User:
        with self._tx() as orm:
            row = orm.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                row = UserRow(
                    name=name, created_at=datetime.now(timezone.utc), kind="user", role="participant"
                )
                orm.add(row)
                orm.flush()
            return self._user(orm, row)

    def create_account(
        self, name: str, kind: str, role: str, password_hash: str | None, team: str | None = None
    ) -> User:
        try:
            with self._tx() as orm:
                team_id = self._team_id(orm, team)
                orm.add(
                    UserRow(
                        name=name,
                        created_at=datetime.now(timezone.utc),
                        kind=kind,
                        role=Role(role).value,
                        password_hash=password_hash,
                        team_id=team_id,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"the name {name!r} is already taken") from exc
        return self.get_user(name)

    @staticmethod
    def _team_id(orm: OrmSession, team: str | None) -> int | None:
        if team is None:
            return None
        team_id = orm.scalar(select(UserRow.id).where(UserRow.name == team, UserRow.kind == "team"))
        if team_id is None:
            raise NotFound(f"team {team!r} not found")
        return team_id

    def get_user(self, name: str) -> User:
        with self._tx() as orm:
            row = orm.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"account {name!r} not found")
            return self._user(orm, row)

    def list_users(self) -> list[User]:
        with self._tx() as orm:
            return [self._user(orm, row) for row in orm.scalars(select(UserRow).order_by(UserRow.name))]

    def update_user(self, name: str, **values: Any) -> User:
        with self._tx() as orm:
            row = orm.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"account {name!r} not found")
            if "team" in values:
                row.team_id = self._team_id(orm, values.pop("team"))
            if "role" in values:
                values["role"] = Role(values["role"]).value
            for key, value in values.items():
                if key not in ("role", "password_hash", "disabled_at", "storage_quota_mb", "webhook_url"):
                    raise ValueError(f"cannot set {key!r} on an account")
                setattr(row, key, value)
        return self.get_user(name)

    def team_members(self, team: str) -> list[User]:
        with self._tx() as orm:
            team_id = self._team_id(orm, team)
            rows = orm.scalars(select(UserRow).where(UserRow.team_id == team_id).order_by(UserRow.name))
            return [self._user(orm, row) for row in rows]

    def add_token(self, user_id: int, token_hash: str, expires_at: datetime | None) -> None:
        with self._tx() as orm:
            existing = orm.scalar(select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash))
            if existing is not None:  # the same token again (a fixed server token): renew it
                existing.user_id, existing.expires_at, existing.revoked_at = user_id, expires_at, None
                return
            orm.add(
                ApiTokenRow(
                    user_id=user_id,
                    token_hash=token_hash,
                    created_at=datetime.now(timezone.utc),
                    expires_at=expires_at,
                )
            )

    def revoke_token(self, token_hash: str, at: datetime) -> bool:
        with self._tx() as orm:
            result = orm.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.token_hash == token_hash, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def revoke_tokens_of(self, user_id: int, at: datetime) -> int:
        with self._tx() as orm:
            result = orm.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def user_for_token(self, token_hash: str, now: datetime) -> User | None:
        with self._tx() as orm:
            row = orm.execute(
                select(ApiTokenRow, UserRow)
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(
                    ApiTokenRow.token_hash == token_hash,
                    ApiTokenRow.revoked_at.is_(None),
                    UserRow.disabled_at.is_(None),
                )
            ).first()
            if row is None:
                return None
            token, user = row
            expires = _utc(token.expires_at)
            if expires is not None and expires <= now:
                return None
            return self._user(orm, user)

    def create_invite(
        self, code_hash: str, role: str, created_by: int, expires_at: datetime | None, max_uses: int
    ) -> None:
        with self._tx() as orm:
            orm.add(
                InviteRow(
                    code_hash=code_hash,
                    role=Role(role).value,
                    created_by=created_by,
                    created_at=datetime.now(timezone.utc),
                    expires_at=expires_at,
                    max_uses=max_uses,
                    uses=0,
                )
            )

    def redeem_invite(self, code_hash: str, at: datetime) -> str:
        with self._tx() as orm:
            role = orm.scalar(
                update(InviteRow)
                .where(
                    InviteRow.code_hash == code_hash,
                    InviteRow.uses < InviteRow.max_uses,
                    (InviteRow.expires_at.is_(None)) | (InviteRow.expires_at > at),
                )
                .values(uses=InviteRow.uses + 1)
                .returning(InviteRow.role)
            )
            if role is None:
                raise NotFound("invalid, expired or used-up invite code")
            return str(role)

    # datasets -------------------------------------------------------------------
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
            row = orm.execute(
                select(DatasetRow, UserRow.name)
                .join(UserRow, UserRow.id == DatasetRow.owner_id)
                .where(DatasetRow.name == name)
            ).first()
            if row is None:
                raise NotFound(f"dataset {name!r} not found")
            return self._dataset(*row)

    def list_datasets(self) -> list[Dataset]:
        with self._tx() as orm:
            rows = orm.execute(
                select(DatasetRow, UserRow.name)
                .join(UserRow, UserRow.id == DatasetRow.owner_id)
                .order_by(DatasetRow.name)
            ).all()
            return [self._dataset(*row) for row in rows]

    @staticmethod
    def _dataset(row: DatasetRow, owner: str) -> Dataset:
        return Dataset(
            id=row.id,
            name=row.name,
            owner=owner,
            metric=row.metric,
            description=row.description,
            train_size=row.train_size,
            test_size=row.test_size,
            size_bytes=row.size_bytes,
            created_at=_utc(row.created_at),  # type: ignore[arg-type]
            public_fraction=row.public_fraction,
            daily_limit=row.daily_limit,
            total_limit=row.total_limit,
            eval_timeout_s=row.eval_timeout_s,
            closed_at=_utc(row.closed_at),
            round_public=row.round_public,
        )

    # sessions -------------------------------------------------------------------
    def create_session(
        self,
        owner_id: int,
        dataset_id: int,
        entry: str,
        args: Sequence[str],
        description: str,
        gpus: int,
        token_hash: str,
        parent: str | None = None,
        resume_checkpoint: str | None = None,
        cpus: int = 0,
        memory_mb: int = 0,
        shm_mb: int = 0,
    ) -> Session:
        with self._tx() as orm:
            number = self._next_number(orm, owner_id, dataset_id)
            row = SessionRow(
                owner_id=owner_id,
                dataset_id=dataset_id,
                number=number,
                entry=entry,
                args=list(args),
                description=description,
                status=SessionStatus.QUEUED.value,
                gpus=gpus,
                cpus=cpus,
                memory_mb=memory_mb,
                shm_mb=shm_mb,
                token_hash=token_hash,
                created_at=datetime.now(timezone.utc),
                parent=parent,
                resume_checkpoint=resume_checkpoint,
            )
            orm.add(row)
            orm.flush()
            session_id = row.id
        return self.get_session_by_id(session_id)

    @staticmethod
    def _next_number(orm: OrmSession, owner_id: int, dataset_id: int) -> int:
        """Increment the counter in the database, so concurrent servers never collide."""
        key = (SessionCounterRow.owner_id == owner_id, SessionCounterRow.dataset_id == dataset_id)
        for _ in range(3):
            number = orm.scalar(
                update(SessionCounterRow)
                .where(*key)
                .values(last_number=SessionCounterRow.last_number + 1)
                .returning(SessionCounterRow.last_number)
            )
            if number is not None:
                return number
            try:
                with orm.begin_nested():
                    orm.add(SessionCounterRow(owner_id=owner_id, dataset_id=dataset_id, last_number=1))
                return 1
            except IntegrityError:  # another transaction created the counter first
                continue
        raise Conflict("could not allocate a session number; try again")

    def _session_query(self):  # type: ignore[no-untyped-def]
        return (
            select(SessionRow, UserRow.name, DatasetRow.name)
            .join(UserRow, UserRow.id == SessionRow.owner_id)
            .join(DatasetRow, DatasetRow.id == SessionRow.dataset_id)
        )

    @staticmethod
    def _session(row: SessionRow, owner: str, dataset: str) -> Session:
        return Session(
            id=row.id,
            owner=owner,
            dataset=dataset,
            number=row.number,
            entry=row.entry,
            args=list(row.args or []),
            description=row.description,
            status=SessionStatus(row.status),
            exit_code=row.exit_code,
            reason=row.reason,
            gpus=row.gpus,
            cpus=row.cpus,
            memory_mb=row.memory_mb,
            shm_mb=row.shm_mb,
            created_at=_utc(row.created_at),  # type: ignore[arg-type]
            started_at=_utc(row.started_at),
            ended_at=_utc(row.ended_at),
            summary=row.summary,
            last_report=row.last_report,
            parent=row.parent,
            resume_checkpoint=row.resume_checkpoint,
        )

    def get_session(self, owner: str, dataset: str, number: int) -> Session:
        with self._tx() as orm:
            row = orm.execute(
                self._session_query().where(
                    UserRow.name == owner, DatasetRow.name == dataset, SessionRow.number == number
                )
            ).first()
            if row is None:
                raise NotFound(f"session {owner}/{dataset}/{number} not found")
            return self._session(*row)

    def get_session_by_id(self, session_id: int) -> Session:
        with self._tx() as orm:
            row = orm.execute(self._session_query().where(SessionRow.id == session_id)).first()
            if row is None:
                raise NotFound(f"session #{session_id} not found")
            return self._session(*row)

    def session_for_token(self, token_hash: str) -> Session | None:
        with self._tx() as orm:
            row = orm.execute(self._session_query().where(SessionRow.token_hash == token_hash)).first()
            return None if row is None else self._session(*row)

    def list_sessions(
        self,
        owner: str | Sequence[str] | None = None,
        dataset: str | None = None,
        statuses: Iterable[SessionStatus] | None = None,
        limit: int | None = None,
    ) -> list[Session]:
        query = self._session_query()
        if isinstance(owner, str):
            query = query.where(UserRow.name == owner)
        elif owner is not None:
            query = query.where(UserRow.name.in_(list(owner)))
        if dataset is not None:
            query = query.where(DatasetRow.name == dataset)
        if statuses is not None:
            query = query.where(SessionRow.status.in_([s.value for s in statuses]))
        query = query.order_by(SessionRow.created_at.desc(), SessionRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._tx() as orm:
            return [self._session(*row) for row in orm.execute(query).all()]

    def transition_session(
        self,
        session_id: int,
        to: SessionStatus,
        *,
        from_statuses: Iterable[SessionStatus],
        exit_code: int | None = None,
        reason: str | None = None,
        at: datetime,
    ) -> Session | None:
        values: dict[str, Any] = {"status": to.value}
        if to is SessionStatus.RUNNING:
            values.update(started_at=at, reason=None)
        if to.is_terminal:
            values.update(ended_at=at, exit_code=exit_code, reason=reason)
        with self._tx() as orm:
            if to.is_terminal:
                # the credit ticker may have billed the session up to a moment after ``at``
                # (it locked the row first): it ended then, so run time and bill agree
                charged = orm.execute(
                    select(SessionRow.charged_until).where(SessionRow.id == session_id).with_for_update()
                ).scalar_one_or_none()
                if charged is not None and _utc(charged) > at:  # type: ignore[operator]
                    values["ended_at"] = _utc(charged)
            result = orm.execute(
                update(SessionRow)
                .where(
                    SessionRow.id == session_id,
                    SessionRow.status.in_([s.value for s in from_statuses]),
                )
                .values(**values)
            )
            changed = result.rowcount == 1  # type: ignore[attr-defined]
        return self.get_session_by_id(session_id) if changed else None

    def requeue_session(self, session_id: int, token_hash: str, resume_checkpoint: str) -> Session | None:
        terminal = [s.value for s in SessionStatus if s.is_terminal]
        with self._tx() as orm:
            result = orm.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.status.in_(terminal))
                .values(
                    status=SessionStatus.QUEUED.value,
                    token_hash=token_hash,
                    resume_checkpoint=resume_checkpoint,
                    exit_code=None,
                    reason=None,
                    ended_at=None,
                    charged_until=None,  # charging restarts when it runs again
                )
            )
            changed = result.rowcount == 1  # type: ignore[attr-defined]
        return self.get_session_by_id(session_id) if changed else None

    def set_queue_reason(self, session_id: int, reason: str | None) -> None:
        with self._tx() as orm:
            orm.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.status == SessionStatus.QUEUED.value)
                .values(reason=reason)
            )

    def set_session_description(self, session_id: int, description: str) -> Session:
        with self._tx() as orm:
            orm.execute(update(SessionRow).where(SessionRow.id == session_id).values(description=description))
        return self.get_session_by_id(session_id)

    def set_session_token(self, session_id: int, token_hash: str) -> None:
        with self._tx() as orm:
            orm.execute(update(SessionRow).where(SessionRow.id == session_id).values(token_hash=token_hash))

    def delete_session(self, session_id: int) -> None:
        with self._tx() as orm:
            orm.execute(delete(MetricRow).where(MetricRow.session_id == session_id))
            orm.execute(delete(CheckpointRow).where(CheckpointRow.session_id == session_id))
            orm.execute(delete(SessionRow).where(SessionRow.id == session_id))

    # metrics and checkpoints ----------------------------------------------------
    def add_reports(self, session_id: int, reports: Sequence[dict[str, Any]]) -> None:
        if not reports:
            return
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] | None = None
        for report in reports:
            created = report["time"]
            for key, value in report["metrics"].items():
                numeric = float(value) if isinstance(value, (int, float)) else None
                rows.append(
                    {
                        "session_id": session_id,
                        "step": report["step"],
                        "key": key,
                        "value": numeric,
                        "scope": report.get("scope"),
                        "created_at": created,
                    }
                )
            if report.get("summary"):
                summary = {"step": report["step"], **report["metrics"]}
        last = reports[-1]
        with self._tx() as orm:
            if rows:
                orm.execute(insert(MetricRow), rows)
            values: dict[str, Any] = {"last_report": {"step": last["step"], **last["metrics"]}}
            if summary is not None:
                values["summary"] = summary
            orm.execute(update(SessionRow).where(SessionRow.id == session_id).values(**values))

    def list_metrics(self, session_id: int) -> list[MetricPoint]:
        with self._tx() as orm:
            rows = orm.scalars(
                select(MetricRow)
                .where(MetricRow.session_id == session_id)
                .order_by(MetricRow.key, MetricRow.step, MetricRow.id)
            ).all()
            return [
                MetricPoint(r.step, r.key, r.value, r.scope, _utc(r.created_at))  # type: ignore[arg-type]
                for r in rows
            ]

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
            # saves of one session take turns on its row, so two saves of one name never both insert
            orm.execute(select(SessionRow.id).where(SessionRow.id == session_id).with_for_update())
            row = orm.scalar(
                select(CheckpointRow).where(
                    CheckpointRow.session_id == session_id, CheckpointRow.name == name
                )
            )
            if row is None:
                row = CheckpointRow(session_id=session_id, name=name)
                orm.add(row)
            row.created_at = at
            row.elapsed_s = elapsed_s
            row.summary = summary
            row.size_bytes = size_bytes
            orm.flush()
            return self._checkpoint(row)

    def list_checkpoints(self, session_id: int) -> list[Checkpoint]:
        with self._tx() as orm:
            rows = orm.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.session_id == session_id)
                .order_by(CheckpointRow.created_at, CheckpointRow.id)
            ).all()
            return [self._checkpoint(r) for r in rows]

    def delete_checkpoint(self, session_id: int, name: str) -> bool:
        with self._tx() as orm:
            result = orm.execute(
                delete(CheckpointRow).where(
                    CheckpointRow.session_id == session_id, CheckpointRow.name == name
                )
            )
            return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    def get_checkpoint(self, session_id: int, name: str) -> Checkpoint:
        with self._tx() as orm:
            # saves of one session take turns on its row, so two saves of one name never both insert
            orm.execute(select(SessionRow.id).where(SessionRow.id == session_id).with_for_update())
            row = orm.scalar(
                select(CheckpointRow).where(
                    CheckpointRow.session_id == session_id, CheckpointRow.name == name
                )
            )
            if row is None:
                raise NotFound(f"checkpoint {name!r} not found")
            return self._checkpoint(row)

    @staticmethod
    def _checkpoint(row: CheckpointRow) -> Checkpoint:
        return Checkpoint(
            session_id=row.session_id,
            name=row.name,
            created_at=_utc(row.created_at),  # type: ignore[arg-type]
            elapsed_s=row.elapsed_s,
            summary=row.summary,
            size_bytes=row.size_bytes,
        )

    # competition -------------------------------------------------------------------
    _DATASET_OPTIONS = frozenset(
        {"public_fraction", "daily_limit", "total_limit", "eval_timeout_s", "closed_at", "round_public"}
    )

    def update_dataset(self, name: str, **options: Any) -> Dataset:
        unknown = set(options) - self._DATASET_OPTIONS
        if unknown:
            raise ValueError(f"unknown dataset options: {', '.join(sorted(unknown))}")
        with self._tx() as orm:
            result = orm.execute(update(DatasetRow).where(DatasetRow.name == name).values(**options))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFound(f"dataset {name!r} not found")
        return self.get_dataset(name)

    def create_submission(
        self, dataset: Dataset, owner_id: int, session: Session, checkpoint: str, total: int, at: datetime
    ) -> Submission:
        with self._tx() as orm:
            # serialise one owner's submissions on PostgreSQL (SQLite already holds the write lock)
            orm.execute(select(UserRow.id).where(UserRow.id == owner_id).with_for_update())
            self._check_limits(orm, dataset, owner_id, at)
            row = SubmissionRow(
                dataset_id=dataset.id,
                owner_id=owner_id,
                session_id=session.id,
                session_name=session.name,
                checkpoint=checkpoint,
                status=SubmissionStatus.QUEUED.value,
                progress=0,
                total=total,
                created_at=at,
            )
            orm.add(row)
            orm.flush()
            submission_id = row.id
        return self.get_submission(submission_id)

    def _check_limits(self, orm: OrmSession, dataset: Dataset, owner_id: int, at: datetime) -> None:
        if dataset.total_limit is not None:
            used, _ = self._count(orm, dataset.id, owner_id, None)
            if used >= dataset.total_limit:
                raise LimitReached(
                    f"all {dataset.total_limit} submissions allowed on {dataset.name} are used", None
                )
        if dataset.daily_limit is not None:
            used, oldest = self._count(orm, dataset.id, owner_id, at - timedelta(days=1))
            if used >= dataset.daily_limit:
                next_allowed = (oldest or at) + timedelta(days=1)
                raise LimitReached(
                    f"the {dataset.daily_limit} submissions per day allowed on {dataset.name} are used; "
                    f"the next one is allowed at {next_allowed.isoformat(timespec='seconds')}",
                    next_allowed,
                )

    def count_submissions(
        self, dataset_id: int, owner_id: int, since: datetime | None
    ) -> tuple[int, datetime | None]:
        with self._tx() as orm:
            return self._count(orm, dataset_id, owner_id, since)

    @staticmethod
    def _count(
        orm: OrmSession, dataset_id: int, owner_id: int, since: datetime | None
    ) -> tuple[int, datetime | None]:
        query = select(func.count(), func.min(SubmissionRow.created_at)).where(
            SubmissionRow.dataset_id == dataset_id,
            SubmissionRow.owner_id == owner_id,
            # a failure counts once the test inputs reached the participant's code: what it
            # fails with (and when) could otherwise carry them out for free
            # (a cancelled one likewise)
            or_(
                SubmissionRow.status.not_in(
                    [SubmissionStatus.FAILED.value, SubmissionStatus.CANCELLED.value]
                ),
                SubmissionRow.inputs_sent_at.is_not(None),
            ),
        )
        if since is not None:
            query = query.where(SubmissionRow.created_at > since)
        count, oldest = orm.execute(query).one()
        return int(count), _utc(oldest)

    def update_submission(self, submission_id: int, **values: Any) -> Submission:
        if "status" in values:
            values["status"] = SubmissionStatus(values["status"]).value
        with self._tx() as orm:
            orm.execute(update(SubmissionRow).where(SubmissionRow.id == submission_id).values(**values))
        return self.get_submission(submission_id)

    def _submission_query(self):  # type: ignore[no-untyped-def]
        return (
            select(SubmissionRow, DatasetRow.name, UserRow.name)
            .join(DatasetRow, DatasetRow.id == SubmissionRow.dataset_id)
            .join(UserRow, UserRow.id == SubmissionRow.owner_id)
        )

    @staticmethod
    def _submission(row: SubmissionRow, dataset: str, owner: str) -> Submission:
        return Submission(
            id=row.id,
            dataset=dataset,
            owner=owner,
            session_name=row.session_name,
            checkpoint=row.checkpoint,
            status=SubmissionStatus(row.status),
            reason=row.reason,
            public_score=row.public_score,
            private_score=row.private_score,
            progress=row.progress,
            total=row.total,
            created_at=_utc(row.created_at),  # type: ignore[arg-type]
            finished_at=_utc(row.finished_at),
            inputs_sent_at=_utc(row.inputs_sent_at),
        )

    def get_submission(self, submission_id: int) -> Submission:
        with self._tx() as orm:
            row = orm.execute(self._submission_query().where(SubmissionRow.id == submission_id)).first()
            if row is None:
                raise NotFound(f"submission {submission_id} not found")
            return self._submission(*row)

    def list_submissions(self, dataset: str, owner: str | None = None) -> list[Submission]:
        query = self._submission_query().where(DatasetRow.name == dataset)
        if isinstance(owner, str):
            query = query.where(UserRow.name == owner)
        elif owner is not None:
            query = query.where(UserRow.name.in_(list(owner)))
        with self._tx() as orm:
            rows = orm.execute(query.order_by(SubmissionRow.created_at, SubmissionRow.id)).all()
            return [self._submission(*row) for row in rows]

    def fail_running_submissions(self, reason: str, at: datetime) -> int:
        with self._tx() as orm:
            result = orm.execute(
                update(SubmissionRow)
                .where(
                    SubmissionRow.status.in_([SubmissionStatus.QUEUED.value, SubmissionStatus.RUNNING.value])
                )
                .values(
                    status=SubmissionStatus.FAILED.value, reason=reason, finished_at=at, inputs_sent_at=None
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    # cache -------------------------------------------------------------------------
    def _cache(self, orm: OrmSession, row: CacheEntryRow) -> CacheEntry:
        owner = orm.scalar(select(UserRow.name).where(UserRow.id == row.owner_id)) or ""
        return CacheEntry(
            owner=owner,
            key=row.key,
            function=row.function,
            dataset=row.dataset,
            size_bytes=row.size_bytes,
            created_at=_utc(row.created_at),  # type: ignore[arg-type]
            last_used_at=_utc(row.last_used_at),  # type: ignore[arg-type]
            hits=row.hits,
        )

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
            return self._cache(orm, row)

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
                return self._cache(orm, row), True
        except IntegrityError:
            existing = self.get_cache(owner_id, key)
            assert existing is not None
            return existing, False

    def list_cache(self, owner_id: int) -> list[CacheEntry]:
        with self._tx() as orm:
            rows = orm.scalars(
                select(CacheEntryRow)
                .where(CacheEntryRow.owner_id == owner_id)
                .order_by(CacheEntryRow.created_at)
            )
            return [self._cache(orm, row) for row in rows]

    def delete_cache(self, owner_id: int, key: str) -> bool:
        with self._tx() as orm:
            result = orm.execute(
                delete(CacheEntryRow).where(CacheEntryRow.owner_id == owner_id, CacheEntryRow.key == key)
            )
            return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    # storage -------------------------------------------------------------------------
    def storage_used(self, owner_id: int) -> int:
        with self._tx() as orm:
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

    # credits -------------------------------------------------------------------------
    def _change_balance(
        self, orm: OrmSession, account_id: int, delta: float, reason: str, at: datetime
    ) -> float:
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

    def grant_credits(self, account_id: int, delta: float, reason: str, at: datetime) -> float:
        with self._tx() as orm:
            return self._change_balance(orm, account_id, delta, reason, at)

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
                    self._change_balance(orm, row.id, missing, f"daily allowance {today}", at)
                row.topped_up_on = today
            return len(rows)

    def charge_running(self, at: datetime) -> list[tuple[int, str, float]]:
        exhausted: list[tuple[int, str, float]] = []
        with self._tx() as orm:
            rows = orm.execute(
                self._billing_query()
                .where(SessionRow.status == SessionStatus.RUNNING.value)
                .with_for_update(of=SessionRow)
            ).all()
            for session, owner, dataset in rows:
                balance = self._charge(orm, session, owner, dataset, at)
                if balance is not None and balance <= 0:
                    exhausted.append((session.id, owner, balance))
        return exhausted

    def charge_session(self, session_id: int, until: datetime) -> float | None:
        with self._tx() as orm:
            row = orm.execute(
                self._billing_query().where(SessionRow.id == session_id).with_for_update(of=SessionRow)
            ).one_or_none()
            return None if row is None else self._charge(orm, *row, until)

    @staticmethod
    def _billing_query() -> Any:
        return (
            select(SessionRow, UserRow.name, DatasetRow.name)
            .join(UserRow, UserRow.id == SessionRow.owner_id)
            .join(DatasetRow, DatasetRow.id == SessionRow.dataset_id)
        )

    def _charge(
        self, orm: OrmSession, session: SessionRow, owner: str, dataset: str, until: datetime
    ) -> float | None:
        """Bill a locked session row from its last charge to ``until``; the new balance, if billed."""
        since = _utc(session.charged_until) or _utc(session.started_at)
        if since is None or until <= since:
            return None
        session.charged_until = until
        cost = (until - since).total_seconds() / 60 * max(session.gpus, 1)
        name = f"{owner}/{dataset}/{session.number}"
        return self._change_balance(orm, session.owner_id, -cost, f"session #{session.id} {name}", until)

    def credit_events(self, account_id: int, limit: int) -> list[CreditEvent]:
        with self._tx() as orm:
            rows = orm.scalars(
                select(CreditEventRow)
                .where(CreditEventRow.account_id == account_id)
                .order_by(CreditEventRow.id.desc())
                .limit(limit)
            )
            return [CreditEvent(r.delta, r.reason, _utc(r.created_at)) for r in rows]  # type: ignore[arg-type]
