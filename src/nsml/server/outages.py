"""What a request that failed for want of a resource tells the client, rather than a 500.

Two failures are nobody's bug and pass by themselves, so the client hears what happened
and what to do, in one line:

* the database not answering (PostgreSQL restarting, a connection cut): 503 with
  ``Retry-After``, and the next request after it came back is served as usual (the
  engine pings a pooled connection before use and replaces a dead one);
* the disk (or the account's file system quota) full: 507; whatever was being written was
  staged and is removed, so nothing half-written is kept or listed.

A write no client waits for (a session's end, reported by its runner) cannot answer 503:
:func:`until_the_database_answers` retries it while the database restarts.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger("nsml.server")
DATABASE_RETRY_S = 5
DATABASE_DOWN = f"the database is not answering (restarting?); retry in {DATABASE_RETRY_S} s"
DISK_FULL = (
    "the server's disk is full; nothing of this request was stored: "
    "free space (remove old checkpoints with `nsml model rm`) or ask the operator, then retry"
)
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
WRITE_PATIENCE_S = 300.0  # how long a write nobody waits for is retried before it is given up
T = TypeVar("T")


def outage_answer(exc: BaseException) -> tuple[int, str, dict[str, str]] | None:
    """(status, one-line detail, headers) when ``exc`` (or what it wraps) is one of
    these failures; None for anything else, which stays a 500."""
    for cause in _chain(exc):
        if isinstance(cause, (OperationalError, InterfaceError)) or (
            isinstance(cause, DBAPIError) and cause.connection_invalidated
        ):
            log.warning("the database did not answer: %s", type(cause.orig).__name__)
            return 503, DATABASE_DOWN, {"Retry-After": str(DATABASE_RETRY_S)}
        if isinstance(cause, OSError) and cause.errno in FULL_ERRNOS:
            log.error("the disk is full (%s)", errno.errorcode.get(cause.errno or 0, "?"))
            return 507, DISK_FULL, {}
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def until_the_database_answers(write: Callable[[], T], patience_s: float = WRITE_PATIENCE_S) -> T:
    """``write()``, tried again while the database does not answer (for ``patience_s``)."""
    deadline = time.monotonic() + patience_s
    delay = 0.5
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning(
                "the database did not answer (%s); trying again in %g s", type(exc.orig).__name__, delay
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
