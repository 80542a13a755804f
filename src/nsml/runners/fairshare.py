"""Fair share: which queued run starts next when capacity frees up.

First come, first served lets one participant who queues many long runs hold every
slot while everybody else waits behind them. Instead each free slot goes to the owner
(a user, or a team) with the fewest runs going, and among that owner's runs to the
earliest queued; an owner already at the operator's per-user cap is skipped, so the
slot goes to somebody else. Sessions (in each runner) and evaluations (in the
submission service) use the same rule.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from nsml.runners.base import RunnerEvents, RunSpec

log = logging.getLogger("nsml.runner")

T = TypeVar("T")


def owner_of(spec: RunSpec) -> str:
    """The account a run counts against: its session's owner (the first part of the name)."""
    return spec.owner or spec.name.split("/", 1)[0]


def next_turn(
    queue: Sequence[T],
    owner: Callable[[T], str],
    running: Mapping[str, int],
    cap: int,
    startable: Callable[[T], bool] = lambda item: True,
) -> T | None:
    """The queued item to start now, or None.

    Among items whose owner is under ``cap`` (0: no cap) and that ``startable`` accepts,
    the one whose owner has the fewest in ``running``, then the earliest in ``queue``.
    """
    best: T | None = None
    best_key: tuple[int, int] | None = None
    for position, item in enumerate(queue):
        going = running.get(owner(item), 0)
        if (cap and going >= cap) or not startable(item):
            continue
        key = (going, position)
        if best_key is None or key < best_key:
            best, best_key = item, key
    return best


class RunsByOwner(dict[str, int]):
    """How many runs each owner has going (what :func:`next_turn` weighs), and whose each
    run is, so that a run's end is counted against the right owner."""

    def __init__(self) -> None:
        super().__init__()
        self._owners: dict[int, str] = {}

    def add(self, run: int, owner: str) -> None:
        self._owners[run] = owner
        self[owner] = self.get(owner, 0) + 1

    def remove(self, run: int) -> None:
        owner = self._owners.pop(run, None)
        if owner is not None:
            self[owner] -= 1
            if not self[owner]:
                del self[owner]

    def owner(self, run: int) -> str:
        return self._owners[run]


def cap_reason(going: int, what: str) -> str:
    """Why a queued run of an owner at the cap waits (``ps`` shows the part before ':')."""
    return (
        f"Per-user limit: you have {going} {what} running, the most this server runs "
        "at once for one user; it starts when one of them ends"
    )


class WaitNotices:
    """Tells the runner's events why queued sessions wait: only when the reason changes,
    in the order decided, on one thread of its own (the events reach the store, which
    must not happen under the runner's lock). Its methods are called with that lock held."""

    def __init__(self) -> None:
        self._told: dict[int, str | None] = {}
        self._queue: queue.SimpleQueue[tuple[int, str | None]] = queue.SimpleQueue()

    def start(self, events: RunnerEvents) -> None:
        threading.Thread(target=self._deliver, args=(events,), name="nsml-queue-reasons", daemon=True).start()

    def tell(self, session_id: int, reason: str | None) -> None:
        if self._told.get(session_id) != reason:
            self._told[session_id] = reason
            self._queue.put((session_id, reason))

    def forget(self, session_id: int) -> None:
        """It left the queue (started or stopped)."""
        self._told.pop(session_id, None)

    def _deliver(self, events: RunnerEvents) -> None:
        while True:
            session_id, reason = self._queue.get()
            try:
                events.on_waiting(session_id, reason)
            except Exception:  # a reason is advisory; the queue must go on
                log.exception("recording why session %s waits", session_id)
