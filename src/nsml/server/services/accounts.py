"""Accounts, teams, invites and tokens."""

from __future__ import annotations

import math
import secrets
import threading
from datetime import datetime, timedelta, timezone

from nsml.names import InvalidName, validate_name
from nsml.server.auth import Principal, PrincipalCache, authenticate, hash_token, new_token
from nsml.server.errors import BadRequest, ConflictError, NotFoundError, TooManyRequests, Unauthorized
from nsml.server.passwords import (
    PasswordCheckBusy,
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from nsml.server.ratelimit import LoginLimiter
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, Conflict, NotFound, Role, User

MAX_TEAM_SIZE = 3  # as in the 2018 hackathon


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _valid_name(name: str) -> bool:
    """No account has an invalid name; such a name (a NUL, say, from the web form) is not
    looked up, only answered like any wrong name."""
    try:
        validate_name("account", name)
    except InvalidName:
        return False
    return True


class AccountService:
    def __init__(self, store: AbstractStore, settings: ServerSettings) -> None:
        self.store = store
        self.settings = settings
        self.by_account = LoginLimiter(free_failures=5)
        self.by_address = LoginLimiter(free_failures=20)
        self._gate = threading.Lock()  # check and count both limiters in one step
        self.principals = PrincipalCache(settings.auth_cache_s)

    # login -----------------------------------------------------------------------------
    def login(self, name: str, password: str, address: str) -> tuple[User, str, datetime]:
        """Check a password, slowed down per account and per address (see ``ratelimit``).

        The attempt counts as a failure before the (slow) password check, under one lock
        for both limiters, so parallel guesses cannot slip past the check together. A
        success clears the account's count and gives the address back this one attempt,
        nothing more: logging into one's own account between guesses at another's
        password must not reset the address's count.
        """
        with self._gate:
            wait = max(self.by_account.retry_after([name]), self.by_address.retry_after([address]))
            if wait > 0:
                seconds = math.ceil(wait)
                raise TooManyRequests(
                    f"too many failed logins; try again in {seconds} s", retry_after=seconds
                )
            self.by_account.failed([name])
            self.by_address.failed([address])
        try:
            user = None if not _valid_name(name) else self.store.get_user(name)
        except NotFound:
            user = None
        # checked first, also without an account (against a dummy hash), so that a wrong
        # name takes as long as a wrong password and does not tell which names exist
        try:
            matches = verify_password(user.password_hash if user else None, password)
        except PasswordCheckBusy:
            self.by_account.forgive([name])  # not checked, so not a failure either
            self.by_address.forgive([address])
            raise
        if user is None or user.kind != "user" or user.disabled or not matches:
            self.by_account.settle([name])
            self.by_address.settle([address])
            raise Unauthorized("wrong account name or password")
        if user.password_hash and needs_rehash(user.password_hash):  # parameters changed since
            user = self.store.update_user(name, password_hash=hash_password(password))
        self.by_account.succeeded([name])
        self.by_address.forgive([address])
        token, expires = self.issue_token(user)
        return user, token, expires

    def remembered(self, token: str) -> Principal | None:
        """Who ``token`` acts for if this server checked it a moment ago; else None."""
        return self.principals.get(hash_token(token))

    def authenticate(self, token: str) -> Principal | None:
        """Who a bearer token or the web UI's cookie acts for; None when it is not valid."""
        return authenticate(self.store, token, self.principals)

    def issue_token(self, user: User) -> tuple[str, datetime]:
        token = new_token()
        expires = _now() + timedelta(hours=self.settings.token_ttl_hours)
        self.store.add_token(user.id, hash_token(token), expires)
        return token, expires

    def logout(self, token: str) -> None:
        self.store.revoke_token(hash_token(token), _now())
        self.principals.forget_all()

    def register(self, name: str, password: str, invite: str) -> User:
        self._check_new(name, password)
        try:
            role = self.store.redeem_invite(hash_token(invite), _now())
        except NotFound as exc:
            raise Unauthorized(str(exc)) from None
        return self._create(name, role, password)

    # administration --------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str | None) -> tuple[User, str | None]:
        """Create a person; without a password, one is generated and returned once."""
        generated = None
        if password is None:
            generated = password = secrets.token_urlsafe(12)
        self._check_new(name, password)
        return self._create(name, role, password), generated

    def _check_new(self, name: str, password: str) -> None:
        try:
            validate_name("account", name)
        except InvalidName as exc:
            raise BadRequest(str(exc)) from None
        problem = check_strength(password)
        if problem:
            raise BadRequest(problem)

    def _create(self, name: str, role: str, password: str) -> User:
        try:
            Role(role)
        except ValueError:
            raise BadRequest(f"unknown role {role!r}; use participant, organiser or admin") from None
        try:
            return self.store.create_account(name, "user", role, hash_password(password))
        except Conflict as exc:
            raise ConflictError(str(exc)) from None

    def disable(self, name: str) -> User:
        user = self.get(name)
        self.store.revoke_tokens_of(user.id, _now())
        try:
            return self.store.update_user(name, disabled_at=_now())
        finally:
            self.principals.forget_all()

    def set_role(self, name: str, role: str) -> User:
        self.get(name)
        try:
            return self.store.update_user(name, role=Role(role))
        except ValueError:
            raise BadRequest(f"unknown role {role!r}; use participant, organiser or admin") from None
        finally:
            self.principals.forget_all()

    def set_storage_quota(self, name: str, mb: int | None) -> User:
        """An account's own quota in MiB (0: unlimited), or None for the server's default."""
        self.get(name)
        return self.store.update_user(name, storage_quota_mb=mb)

    def create_invite(self, creator: User, role: str, uses: int, hours: float | None) -> str:
        try:
            Role(role)
        except ValueError:
            raise BadRequest(f"unknown role {role!r}; use participant, organiser or admin") from None
        code = secrets.token_urlsafe(16)
        expires = _now() + timedelta(hours=hours) if hours else None
        self.store.create_invite(hash_token(code), role, creator.id, expires, uses)
        return code

    def add_to_team(self, name: str, members: list[str]) -> tuple[User, list[User]]:
        """Create the team if needed and add people to it, at most three in all."""
        try:
            validate_name("team", name)
        except InvalidName as exc:
            raise BadRequest(str(exc)) from None
        people = [self.get(member) for member in members]
        for person in people:
            if person.kind != "user":
                raise BadRequest(f"{person.name} is a team, not a person")
            if person.team and person.team != name:
                raise ConflictError(f"{person.name} is already in team {person.team}")
        try:
            team = self.store.get_user(name)
            if team.kind != "team":
                raise ConflictError(f"the name {name!r} is taken by a person")
        except NotFound:
            team = self.store.create_account(name, "team", Role.PARTICIPANT.value, None)
        current = {m.name for m in self.store.team_members(name)}
        joined = current | {p.name for p in people}
        if len(joined) > MAX_TEAM_SIZE:
            raise BadRequest(f"a team has at most {MAX_TEAM_SIZE} members; {name} would have {len(joined)}")
        try:
            for person in people:
                self.store.update_user(person.name, team=name)
        finally:
            self.principals.forget_all()
        return team, self.store.team_members(name)

    def list_users(self) -> list[User]:
        return self.store.list_users()

    def get(self, name: str) -> User:
        """An account by name, fresh from the store (a balance or webhook may have changed)."""
        try:
            return self.store.get_user(name)
        except NotFound:
            raise NotFoundError(f"account {name!r} not found") from None
