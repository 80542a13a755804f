"""Buffered metric reporting.

``nsml.report`` runs inside training loops, so a call only checks its values and
appends them to a buffer; a background thread sends batches. ``flush`` (called by
``nsml.save`` and at exit) waits until everything reported so far was delivered.
"""

from __future__ import annotations

import math
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

SEND_INTERVAL_S = 0.25
MAX_BATCH = 20_000
RETRIES = 5  # for a batch the server refused
# while the server does not answer (restarting, its database restarting: no status, or
# 502/503/504) a batch is sent again for this long, every FIRST_RETRY_S doubling to MAX_RETRY_S
RETRY_FOR_S = 60.0
FIRST_RETRY_S, MAX_RETRY_S = 0.2, 2.0
UNANSWERED = (0, 502, 503, 504)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STEP = 2**31 - 1  # steps are INTEGER columns on the server


def jsonable(key: str, value: Any) -> Any:
    """Accept JSON scalars; turn numpy/torch scalars into numbers; refuse the rest clearly.

    What the server would refuse becomes what it stores instead: a NaN or infinity is
    None, an integer beyond 64 bits a float (None beyond that), so that one odd value
    does not cost the whole batch of reports it travels in."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int and not INT64_MIN <= value <= INT64_MAX:  # the server stores 64 bits at most
        try:
            return jsonable(key, float(value))
        except OverflowError:
            return None
    if kind is int or kind is str or kind is bool or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            number = item()
        except (ValueError, RuntimeError):
            number = None  # more than one element
        if isinstance(number, (int, float, bool)):
            return jsonable(key, number)
    for base in (bool, int, float, str):  # subclasses, e.g. str-valued enums
        if isinstance(value, base):
            return jsonable(key, base(value))
    raise TypeError(
        f"nsml.report: {key}={value!r:.60} is a {kind.__name__}, which is not JSON-serialisable; "
        "report numbers or strings (use .item() for a one-element tensor or array)"
    )


class Reporter:
    def __init__(self, send: Callable[[list[dict[str, Any]], str], None]) -> None:
        """``send(batch, batch_id)``: each batch keeps its id through every try, so a batch
        the server stored although its answer was lost is not stored twice."""
        self._send = send
        self._lock = threading.Condition()
        self._pending: list[dict[str, Any]] = []
        self._added = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def add(self, report: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(report)
            self._added += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="nsml-reporter", daemon=True)
                self._thread.start()
            if len(self._pending) >= MAX_BATCH:
                self._wake.set()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every report added so far was sent (or given up on)."""
        with self._lock:
            target = self._added
            if self._done >= target:
                return True
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._done < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def _loop(self) -> None:
        while True:
            self._wake.wait(SEND_INTERVAL_S)
            self._wake.clear()
            with self._lock:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            if not batch:
                continue
            self._deliver(batch)
            with self._lock:
                self._done += len(batch)
                self._lock.notify_all()
                if self._pending:
                    self._wake.set()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        batch_id = uuid.uuid4().hex
        delay = FIRST_RETRY_S
        deadline = time.monotonic() + RETRY_FOR_S
        refusals = 0
        while True:
            try:
                self._send(batch, batch_id)
                return
            except Exception as exc:  # the server may be restarting; training goes on
                refusals += getattr(exc, "status", 0) not in UNANSWERED
                if refusals >= RETRIES or time.monotonic() + delay > deadline:
                    print(
                        f"[nsml] could not send {len(batch)} metric reports: {exc}",
                        file=sys.stderr,
                        flush=True,
                    )
                    return
                time.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_S)
