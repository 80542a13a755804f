"""Slowing down password guessing, per account and per client address.

A few failures in a row are free (five per account, twenty per address, since a whole
hackathon room may share one address); after that each further attempt must wait twice
as long as the last (1 s, 2 s, 4 s, ... up to 15 minutes).

The service counts an attempt as a failure when it starts, so that guesses sent in
parallel cannot all pass the check before the first one is counted. A success then clears
the *account's* record only; the address just gets that one attempt back
(:meth:`LoginLimiter.forgive`). Clearing the address on a success let an attacker
log into their own account between guesses and so never be slowed down.

State lives in the server process; several servers behind a balancer each keep their own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

FREE_FAILURES = 5
MAX_DELAY_S = 900.0
FORGET_AFTER_S = 3600.0
PRUNE_ABOVE = 10_000  # records kept before stale ones are dropped, so memory stays bounded


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0


class LoginLimiter:
    def __init__(self, free_failures: int = FREE_FAILURES, clock: object = time.monotonic) -> None:
        self.free_failures = free_failures
        self._clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def _now(self) -> float:
        now: float = self._clock()  # type: ignore[operator]
        return now

    def retry_after(self, keys: list[str]) -> float:
        """Seconds to wait before the next attempt for these keys (0 when allowed)."""
        with self._lock:
            return self._wait(keys, self._now())

    def _wait(self, keys: list[str], now: float) -> float:
        wait = 0.0
        for key in keys:
            record = self._records.get(key)
            if record is None or record.failures < self.free_failures:
                continue
            if now - record.last > FORGET_AFTER_S:
                continue
            delay = min(MAX_DELAY_S, 2.0 ** (record.failures - self.free_failures))
            wait = max(wait, record.last + delay - now)
        return max(0.0, wait)

    def failed(self, keys: list[str]) -> None:
        with self._lock:
            self._count(keys, self._now())

    def _count(self, keys: list[str], now: float) -> None:
        if len(self._records) > PRUNE_ABOVE:
            stale = [k for k, r in self._records.items() if now - r.last > FORGET_AFTER_S]
            for key in stale:
                del self._records[key]
        for key in keys:
            record = self._records.setdefault(key, _Record())
            if now - record.last > FORGET_AFTER_S:
                record.failures = 0
            record.failures += 1
            record.last = now

    def settle(self, keys: list[str]) -> None:
        """The attempt counted at its start failed: its delay runs from now, when the caller
        learns so, not from the start of a password check that may have taken a while."""
        now = self._now()
        with self._lock:
            for key in keys:
                record = self._records.get(key)
                if record is not None:
                    record.last = max(record.last, now)

    def forgive(self, keys: list[str]) -> None:
        """Take back one counted attempt (it succeeded); earlier failures stay counted."""
        with self._lock:
            for key in keys:
                record = self._records.get(key)
                if record is not None:
                    record.failures = max(0, record.failures - 1)

    def succeeded(self, keys: list[str]) -> None:
        """Clear the keys' records: for an account, after its own password was given."""
        with self._lock:
            for key in keys:
                self._records.pop(key, None)
