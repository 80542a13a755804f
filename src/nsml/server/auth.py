"""Bearer tokens. Two kinds resolve to a :class:`Principal`:

* user tokens (``api_tokens`` table) act for a user on everything that user owns;
* session tokens (one per session, handed to its process) act only on that session,
  and may read checkpoints of the same owner's other sessions (``nsml.load(session=)``).

Accounts, roles and login (issue: accounts) plug in here without changing the protocol:
clients always send ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from nsml.store import AbstractStore, Session, User


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    user: User
    session: Session | None = None  # set for a session-scoped token

    def can_manage(self, session: Session) -> bool:
        """Stop, remove, read logs: the owner with a user token, or the session itself."""
        if self.session is not None:
            return self.session.id == session.id
        return session.owner == self.user.name

    def can_write_runtime(self, session: Session) -> bool:
        """Report metrics and save checkpoints: only the session's own token."""
        return self.session is not None and self.session.id == session.id

    def can_read(self, session: Session) -> bool:
        return session.owner == self.user.name


def authenticate(store: AbstractStore, token: str) -> Principal | None:
    digest = hash_token(token)
    user = store.user_for_token(digest, datetime.now(timezone.utc))
    if user is not None:
        return Principal(user)
    session = store.session_for_token(digest)
    if session is None or session.status.is_terminal:
        return None
    return Principal(store.get_or_create_user(session.owner), session)
