"""Evaluation slots, handed out in fair-share order with a per-owner cap.

A plain semaphore serves whoever grabs a freed slot first, so one participant with a
few slow evaluations kept another's ``submit -t`` waiting for most of a minute. Here
each waiter holds a ticket; a freed slot goes to the waiting owner with the fewest
evaluations running (then the earliest ticket), and an owner at the operator's cap
waits even when slots are free, so the others always get a turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from nsml.runners.fairshare import cap_reason, next_turn

log = logging.getLogger("nsml.server")


class _Ticket:
    __slots__ = ("owner", "key", "since")

    def __init__(self, owner: str, key: int | None = None) -> None:
        self.owner = owner
        self.key = key  # the submission waiting (None: an `nsml infer`)
        self.since = datetime.now(timezone.utc)


@dataclass(frozen=True)
class SlotsSnapshot:
    """The slots at one moment: who waits (in arrival order) and how many each owner holds."""

    total: int
    per_owner: int
    waiting: list[tuple[str, int | None, datetime]]  # (owner, submission id, since)
    going: dict[str, int]


class EvaluationSlots:
    """``total`` evaluations at once, at most ``per_owner`` of one owner (0: no cap)."""

    def __init__(self, total: int, per_owner: int = 0) -> None:
        self.total = max(1, total)
        self.per_owner = max(0, per_owner)
        self._changed = threading.Condition()
        self._queue: list[_Ticket] = []
        self._going: dict[str, int] = {}

    def running(self, owner: str) -> int:
        with self._changed:
            return self._going.get(owner, 0)

    def snapshot(self) -> SlotsSnapshot:
        with self._changed:
            waiting = [(t.owner, t.key, t.since) for t in self._queue]
            return SlotsSnapshot(self.total, self.per_owner, waiting, dict(self._going))

    def wake(self) -> None:
        """Have every waiter look again (one of them may have been cancelled)."""
        with self._changed:
            self._changed.notify_all()

    def acquire(
        self,
        owner: str,
        timeout: float | None = None,
        on_wait: Callable[[str], object] | None = None,
        key: int | None = None,
        give_up: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Wait for a slot of ``owner``'s turn; False after ``timeout`` seconds, or as soon
        as ``give_up`` says so (after :meth:`wake`), so a cancelled wait leaves the line
        at once instead of taking a slot in its turn.

        ``on_wait`` is told why it waits whenever the reason changes (outside the lock)."""
        ticket = _Ticket(owner, key)
        deadline = None if timeout is None else time.monotonic() + timeout
        told: str | None = None
        with self._changed:
            self._queue.append(ticket)
        try:
            while True:
                with self._changed:
                    if give_up():
                        return False
                    if self._its_turn(ticket):
                        self._queue.remove(ticket)
                        self._going[owner] = self._going.get(owner, 0) + 1
                        self._changed.notify_all()
                        return True
                    reason = self.why_waiting(owner)
                    if reason == told:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            return False
                        self._changed.wait(1.0 if remaining is None else min(remaining, 1.0))
                        continue
                told = reason
                if on_wait is not None:
                    try:
                        on_wait(reason)
                    except Exception:  # the reason is advisory: the turn still comes
                        log.exception("recording why an evaluation of %s waits", owner)
        finally:
            with self._changed:
                if ticket in self._queue:
                    self._queue.remove(ticket)
                    self._changed.notify_all()  # the next in turn may be behind this one

    def release(self, owner: str) -> None:
        with self._changed:
            self._going[owner] -= 1
            if not self._going[owner]:
                del self._going[owner]
            self._changed.notify_all()

    def why_waiting(self, owner: str) -> str:
        """Called with the lock held, or for a message after a refusal."""
        going = self._going.get(owner, 0)
        if self.per_owner and going >= self.per_owner:
            return cap_reason(going, "evaluations")
        return f"Waiting for a free evaluation slot: {self.total} run at once on this server"

    def _its_turn(self, ticket: _Ticket) -> bool:
        if sum(self._going.values()) >= self.total:
            return False
        return next_turn(self._queue, lambda t: t.owner, self._going, self.per_owner) is ticket
