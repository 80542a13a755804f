"""Wakes long polls of a submission (``GET /submissions/{id}?wait=``) when it changes.

Evaluations update submissions from worker threads; the waiting requests sit on the
event loop. Each write through :meth:`SubmissionChanges.update` sets the events of the
requests waiting on that submission, so a reply goes out when the score lands instead of
at the end of the wait or at the next tick of a poll.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nsml.store import AbstractStore, Submission, SubmissionStatus

FINAL = frozenset({SubmissionStatus.SCORED, SubmissionStatus.FAILED, SubmissionStatus.CANCELLED})
# a waiter also looks again this often: another server process on the same database
# changes submissions without telling this one
RECHECK_S = 1.0


def is_final(submission: Submission) -> bool:
    return SubmissionStatus(submission.status) in FINAL


class SubmissionChanges:
    def __init__(self, store: AbstractStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def update(self, submission_id: int, **values: Any) -> Submission:
        """Store a change of a submission, then wake whoever waits on it."""
        updated = self._store.update_submission(submission_id, **values)
        self.touched(submission_id)
        return updated

    def touched(self, submission_id: int) -> None:
        with self._lock:
            waiters = list(self._waiters.get(submission_id, ()))
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    @contextmanager
    def listening(self, submission_id: int) -> Iterator[asyncio.Event]:
        """An event set at the next change; register it before reading, so none is missed."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(submission_id, set()).add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                waiting = self._waiters.get(submission_id)
                if waiting is not None:
                    waiting.discard(waiter)
                    if not waiting:
                        del self._waiters[submission_id]


async def wait_for_change(event: asyncio.Event, seconds: float) -> None:
    """Until the event is set or ``seconds`` (at most :data:`RECHECK_S`) have passed."""
    try:
        await asyncio.wait_for(event.wait(), timeout=max(0.0, min(seconds, RECHECK_S)))
    except TimeoutError:
        pass
    event.clear()
