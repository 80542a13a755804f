"""Slowing down password guessing, per account and per client address.

A few failures in a row are free (five per account, twenty per address, since a whole
hackathon room may share one address); after that each further attempt must wait twice
as long as the last (1 s, 2 s, 4 s, ... up to 15 minutes). A success clears the key.
State lives in the server process; several servers behind a balancer each keep their own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

FREE_FAILURES = 5
MAX_DELAY_S = 900.0
FORGET_AFTER_S = 3600.0


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
        return self._clock()  # type: ignore[operator, no-any-return]

    def retry_after(self, keys: list[str]) -> float:
        """Seconds to wait before the next attempt for these keys (0 when allowed)."""
        now = self._now()
        wait = 0.0
        with self._lock:
            for key in keys:
                record = self._records.get(key)
                if record is None or record.failures < self.free_failures:
                    continue
                delay = min(MAX_DELAY_S, 2.0 ** (record.failures - self.free_failures))
                wait = max(wait, record.last + delay - now)
        return max(0.0, wait)

    def failed(self, keys: list[str]) -> None:
        now = self._now()
        with self._lock:
            for key in keys:
                record = self._records.setdefault(key, _Record())
                if now - record.last > FORGET_AFTER_S:
                    record.failures = 0
                record.failures += 1
                record.last = now

    def succeeded(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._records.pop(key, None)
