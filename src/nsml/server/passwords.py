"""Password hashing with Argon2id (memory-hard), through argon2-cffi, in bounded slots.

The parameters are OWASP's first Argon2id recommendation (19 MiB, 2 passes, 1 lane):
argon2-cffi's defaults (64 MiB, 3 passes, 4 lanes) cost 0.15 s of CPU and 64 MiB per
check, so a burst of a hundred logins grew the server by more than a gigabyte and
slowed every other request. Hashes made with other parameters still verify, and a
login that verifies one stores a fresh hash (:func:`needs_rehash`).

At most :data:`HASH_SLOTS` hashes run at once (one per CPU, at most four): a check
beyond them waits for a slot up to :data:`SLOT_WAIT_S`, then is refused with
:class:`PasswordCheckBusy` (503 with Retry-After), so memory stays bounded whatever the
burst. :func:`login_slot` makes logins wait on the event loop instead of in a worker
thread, so a burst of logins never takes the threads other requests run on.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from nsml.server.errors import ServiceUnavailable

_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
MIN_LENGTH = 8
HASH_SLOTS = max(1, min(4, os.cpu_count() or 1))
SLOT_WAIT_S = 30.0  # how long a check waits for a slot before the caller is told to retry
MAX_WAITING_LOGINS = 256  # logins queued on the event loop beyond this are refused at once
RETRY_AFTER_S = 2

_slots = threading.BoundedSemaphore(HASH_SLOTS)


class PasswordCheckBusy(ServiceUnavailable):
    """Every hashing slot stayed busy: 503, with when to try again."""

    def __init__(self) -> None:
        super().__init__(
            f"the server is busy checking other passwords; try again in {RETRY_AFTER_S} s",
            retry_after=RETRY_AFTER_S,
        )


@contextmanager
def _hashing_slot() -> Iterator[None]:
    if not _slots.acquire(timeout=SLOT_WAIT_S):
        raise PasswordCheckBusy()
    try:
        yield
    finally:
        _slots.release()


with _hashing_slot():
    # verified against when an account does not exist, so a wrong name costs the same time
    _DUMMY = _hasher.hash("not a password of anybody")


def hash_password(password: str) -> str:
    with _hashing_slot():
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        with _hashing_slot():
            return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a hash that just verified was made with other parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


class _LoginQueue:
    """Logins admitted to a worker thread only when a hashing slot is likely free."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = asyncio.Semaphore(HASH_SLOTS)
        self.waiting = 0

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # one per event loop (tests run servers one after another)
            self._loop, self._free, self.waiting = loop, asyncio.Semaphore(HASH_SLOTS), 0
        return self._free


_queue = _LoginQueue()


@asynccontextmanager
async def login_slot() -> AsyncIterator[None]:
    """Wait (on the event loop) for a turn to check a password, or raise PasswordCheckBusy."""
    free = _queue.semaphore()
    if _queue.waiting >= MAX_WAITING_LOGINS:
        raise PasswordCheckBusy()
    _queue.waiting += 1
    try:
        await asyncio.wait_for(free.acquire(), timeout=SLOT_WAIT_S)
    except TimeoutError:
        raise PasswordCheckBusy() from None
    finally:
        _queue.waiting -= 1
    try:
        yield
    finally:
        free.release()


def check_strength(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    return None
