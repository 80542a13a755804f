"""People, teams, API tokens and invites: the accounts part of :class:`SqlStore`."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession

from nsml.store.base import Conflict, NotFound
from nsml.store.entities import Role, User
from nsml.store.sql.base import SqlStoreBase, account_name, utc
from nsml.store.sql.mapping import to_entity
from nsml.store.sql.models import ApiTokenRow, InviteRow, UserRow

# what update_user may set; anything else is a programming error, not a silent no-op
_SETTABLE = frozenset({"role", "password_hash", "disabled_at", "storage_quota_mb", "webhook_url"})


def _user(orm: OrmSession, row: UserRow) -> User:
    team = account_name(orm, row.team_id) if row.team_id else None
    return to_entity(User, row, team=team)


def _team_id(orm: OrmSession, team: str | None) -> int | None:
    if team is None:
        return None
    team_id = orm.scalar(select(UserRow.id).where(UserRow.name == team, UserRow.kind == "team"))
    if team_id is None:
        raise NotFound(f"team {team!r} not found")
    return team_id


class AccountsMixin(SqlStoreBase):
    def get_or_create_user(self, name: str) -> User:
        # every request with a session's token asks for its owner: a read finds them
        # without taking SQLite's write lock, which only a first appearance needs
        with self._read() as orm:
            found = orm.scalar(select(UserRow).where(UserRow.name == name))
            if found is not None:
                return _user(orm, found)
        with self._tx() as orm:
            row = orm.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                row = UserRow(
                    name=name, created_at=datetime.now(timezone.utc), kind="user", role="participant"
                )
                orm.add(row)
                orm.flush()
            return _user(orm, row)

    def create_account(
        self, name: str, kind: str, role: str, password_hash: str | None, team: str | None = None
    ) -> User:
        try:
            with self._tx() as orm:
                team_id = _team_id(orm, team)
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

    def get_user(self, name: str) -> User:
        with self._read() as orm:
            row = orm.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"account {name!r} not found")
            return _user(orm, row)

    def list_users(self) -> list[User]:
        with self._read() as orm:
            return [_user(orm, row) for row in orm.scalars(select(UserRow).order_by(UserRow.name))]

    def update_user(self, name: str, **values: Any) -> User:
        with self._tx() as orm:
            row = orm.scalar(select(UserRow).where(UserRow.name == name))
            if row is None:
                raise NotFound(f"account {name!r} not found")
            if "team" in values:
                row.team_id = _team_id(orm, values.pop("team"))
            if "role" in values:
                values["role"] = Role(values["role"]).value
            for key, value in values.items():
                if key not in _SETTABLE:
                    raise ValueError(f"cannot set {key!r} on an account")
                setattr(row, key, value)
        return self.get_user(name)

    def team_members(self, team: str) -> list[User]:
        with self._read() as orm:
            team_id = _team_id(orm, team)
            rows = orm.scalars(select(UserRow).where(UserRow.team_id == team_id).order_by(UserRow.name))
            return [_user(orm, row) for row in rows]

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
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def revoke_tokens_of(self, user_id: int, at: datetime) -> int:
        with self._tx() as orm:
            result = orm.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def user_for_token(self, token_hash: str, now: datetime) -> tuple[User, datetime | None] | None:
        with self._read() as orm:
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
            expires = utc(token.expires_at)
            if expires is not None and expires <= now:
                return None
            return _user(orm, user), expires

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
