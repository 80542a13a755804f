"""Whether followed sessions have ended, read for all of them in one query a second.

Each ``nsml logs -f`` holds a stream open until its session ends. Asking the store
about every followed session on every follower's own clock made two hundred followers
cost the database hundreds of reads a second; here the followers share one read of all
the sessions followed at that moment, at most every :data:`CHECK_S`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from nsml.store import AbstractStore

CHECK_S = 1.0


class SessionEnds:
    """Lives on the event loop: its state is only touched from coroutines."""

    def __init__(self, store: AbstractStore) -> None:
        self._store = store
        self._followed: Counter[int] = Counter()
        self._ended: set[int] = set()
        self._checked_at = float("-inf")
        self._checking: asyncio.Lock | None = None

    @contextmanager
    def following(self, session_id: int) -> Iterator[None]:
        self._followed[session_id] += 1
        try:
            yield
        finally:
            self._followed[session_id] -= 1
            if self._followed[session_id] <= 0:
                del self._followed[session_id]
                self._ended.discard(session_id)

    async def has_ended(self, session_id: int) -> bool:
        """As of a store read at most :data:`CHECK_S` old (one read for every follower);
        asked only inside :meth:`following` of ``session_id``."""
        if self._checking is None:
            self._checking = asyncio.Lock()
        async with self._checking:
            loop = asyncio.get_running_loop()
            if loop.time() - self._checked_at >= CHECK_S:
                followed = sorted(self._followed)
                self._ended = await asyncio.to_thread(self._store.ended_sessions, followed)
                self._checked_at = loop.time()
        return session_id in self._ended
