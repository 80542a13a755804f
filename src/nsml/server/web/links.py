"""One-time login links for the browser (``nsml web``).

A link carries a random code valid for a few minutes and for one use; opening it sets
a cookie holding a normal login token of the user who asked for the link.
"""

from __future__ import annotations

import secrets
import threading
import time

from nsml.server.auth import hash_token

LINK_TTL_S = 300.0


class LoginLinks:
    def __init__(self) -> None:
        self._codes: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def create(self, user: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            self._codes = {k: v for k, v in self._codes.items() if v[1] > now}
            self._codes[hash_token(code)] = (user, now + LINK_TTL_S)
        return code

    def redeem(self, code: str) -> str | None:
        """The user the code was made for, once; None for an unknown, used or old code."""
        with self._lock:
            found = self._codes.pop(hash_token(code), None)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]
