"""Bearer tokens. Two kinds resolve to a :class:`Principal`:

* user tokens (``api_tokens`` table) act for a user on everything that user owns;
* session tokens (one per session, handed to its process) act only on that session
  (report, save, stop itself, its dataset's train split, the owner's cache), and may read
  the same owner's other sessions and their checkpoints (``nsml.load(session=)``); they
  cannot list sessions, remove anything, or do what needs a person (see ``user_principal``).

Clients always send ``Authorization: Bearer <token>``; where the token came from (the
local server file, ``nsml login``, a session's environment) does not matter here.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from nsml.store import AbstractStore, Dataset, Role, Session, User


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling, and every rule of what they may touch.

    Routes ask these questions through the dependencies in ``deps.py``; no handler
    decides access on its own.
    """

    user: User
    session: Session | None = None  # set for a session-scoped token

    @property
    def namespaces(self) -> frozenset[str]:
        """Owners whose things are the caller's own: the user, and the user's team."""
        return frozenset(n for n in (self.user.name, self.user.team) if n)

    def owns(self, owner: str) -> bool:
        return owner in self.namespaces

    def can_manage(self, session: Session) -> bool:
        """Stop, remove, read logs: the owner (or teammate) with a user token, or the session."""
        if self.session is not None:
            return self.session.id == session.id
        return self.owns(session.owner)

    def can_write_runtime(self, session: Session) -> bool:
        """Report metrics and save checkpoints: only the session's own token."""
        return self.session is not None and self.session.id == session.id

    def can_read(self, session: Session) -> bool:
        return self.owns(session.owner)

    @property
    def is_admin(self) -> bool:
        return self.session is None and self.user.role is Role.ADMIN

    @property
    def is_organiser(self) -> bool:
        return self.session is None and self.user.role in (Role.ORGANISER, Role.ADMIN)

    def can_organise(self, dataset: Dataset) -> bool:
        """Change limits, close, see every submission: the dataset's owner or an admin."""
        return self.is_admin or (self.is_organiser and self.owns(dataset.owner))

    @property
    def can_publish(self) -> bool:
        """Publish shared resources, readable by everyone: organisers and admins, by login."""
        return self.is_organiser

    def can_manage_shared(self, owner: str) -> bool:
        """Replace or remove a shared resource: its publisher (or teammate) or an admin."""
        return self.is_admin or (self.can_publish and self.owns(owner))


class PrincipalCache:
    """Who a user token acts for, remembered ``ttl_s`` seconds.

    Every request of a CLI or a browser is authenticated, and under a hackathon's load the
    token lookup took a sixth of the server's CPU. Only user tokens are remembered: a
    session token stops working the moment its session ends. What a principal carries
    (name, role, team) changes only through ``forget_all``'s callers on this server.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> Principal | None:
        with self._lock:
            found = self._entries.get(digest)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    def put(self, digest: str, principal: Principal, lasts_s: float | None) -> None:
        """``lasts_s``: how long the token itself stays valid (None: no end)."""
        if self.ttl_s <= 0:
            return
        now = time.monotonic()
        until = now + (self.ttl_s if lasts_s is None else min(self.ttl_s, lasts_s))
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[digest] = (principal, until)

    def forget_all(self) -> None:
        """Tokens were revoked or accounts changed: check every token again."""
        with self._lock:
            self._entries.clear()


def authenticate(store: AbstractStore, token: str, cache: PrincipalCache | None = None) -> Principal | None:
    digest = hash_token(token)
    if cache is not None:
        remembered = cache.get(digest)
        if remembered is not None:
            return remembered
    now = datetime.now(timezone.utc)
    granted = store.user_for_token(digest, now)
    if granted is not None:
        user, expires = granted
        if cache is not None:
            cache.put(digest, Principal(user), None if expires is None else (expires - now).total_seconds())
        return Principal(user)
    session = store.session_for_token(digest)
    if session is None or session.status.is_terminal:
        return None
    owner = store.get_or_create_user(session.owner)
    if owner.disabled:
        return None
    return Principal(owner, session)
