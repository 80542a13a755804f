"""``nsml exec``: relaying Python from a session's owner to the session's own process.

The server never evaluates anything. The owner posts a command; it waits here, in
memory, until the session's process takes it over the session's API channel (a long
poll with the session token, started by the SDK once the script shared a scope with
``nsml.report(scope=locals())`` or ``nsml.paused(scope=locals())``), evaluates it in its
sandbox and posts back a short text. The owner's request waits for that answer, bounded.

Everything is bounded so that neither side can make the other hold resources: the
command's length and the answer's (``EXEC_CODE_CHARS``, ``EXEC_OUTPUT_CHARS`` in the
schemas; the SDK cuts a longer answer and says so), the commands waiting per
session (:data:`MAX_PENDING`), how long the owner waits (:data:`ANSWER_WAIT_S`) and how
long a poll is held (:data:`MAX_POLL_WAIT_S`). The state lives on the server's event loop,
in one process, like the login limiter's; a restarted server ends its sessions anyway.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from nsml.server.errors import ApiError, ConflictError, TooManyRequests
from nsml.store import Session, SessionStatus

log = logging.getLogger("nsml.server")

MAX_PENDING = 4  # commands queued or being evaluated per session
ANSWER_WAIT_S = 30.0  # how long the owner's request waits for the session's answer
MAX_POLL_WAIT_S = 25.0  # how long the session's poll is held when nothing is queued
STATUS_CHECK_S = 0.5  # how often a waiting owner's request checks that the session still runs
FORGET_AFTER_S = 600.0  # a listener not heard from for this long is dropped

NO_SCOPE = (
    "this session has not shared a scope: call nsml.report(scope=locals()) in its loop "
    "(or nsml.paused(scope=locals())), then run it again"
)


class NoAnswer(ApiError):
    """The session took longer than :data:`ANSWER_WAIT_S`; not the server's fault."""

    status_code = 408


class ShuttingDown(ApiError):
    status_code = 503


@dataclass
class Command:
    id: str
    code: str
    answer: asyncio.Future[tuple[bool, str]]


@dataclass
class _Listener:
    """A session whose process shared a scope and polls for commands."""

    last_seen: float
    polls: int = 0  # polls being held right now
    queued: deque[Command] = field(default_factory=deque)
    taken: dict[str, Command] = field(default_factory=dict)  # being evaluated
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def busy(self) -> int:
        return len(self.queued) + len(self.taken)


class ExecBroker:
    """Commands per session, between the owner's request and the session's poll.

    Every method runs on the server's event loop; only :meth:`close` may be called from
    another thread (the stop signal)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._listeners: dict[int, _Listener] = {}
        self._closing = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def close(self) -> None:
        """The server is stopping: held polls return at once, waiting owners get a 503."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        self._closing.set()
        for listener in self._listeners.values():
            listener.wake.set()
            for command in [*listener.queued, *listener.taken.values()]:
                if not command.answer.done():
                    command.answer.set_exception(ShuttingDown("the server is shutting down"))

    # the session's side ----------------------------------------------------------
    async def next_command(self, session_id: int, wait: float) -> Command | None:
        """The oldest queued command, waiting up to ``wait`` seconds for one."""
        listener = self._listener(session_id)
        listener.polls += 1
        try:
            deadline = self._clock() + min(wait, MAX_POLL_WAIT_S)
            while not self._closing.is_set():
                listener.last_seen = self._clock()
                if listener.queued:
                    command = listener.queued.popleft()
                    listener.taken[command.id] = command
                    return command
                remaining = deadline - self._clock()
                if remaining <= 0:
                    return None
                listener.wake.clear()
                try:
                    await asyncio.wait_for(listener.wake.wait(), remaining)
                except TimeoutError:
                    return None
            return None
        finally:
            listener.polls -= 1
            listener.last_seen = self._clock()

    def resolve(self, session_id: int, command_id: str, ok: bool, output: str) -> bool:
        """The session's answer; False when nobody waits for it any more."""
        listener = self._listeners.get(session_id)
        command = listener.taken.pop(command_id, None) if listener else None
        if command is None or command.answer.done():
            return False
        command.answer.set_result((ok, output))
        return True

    def _listener(self, session_id: int) -> _Listener:
        listener = self._listeners.get(session_id)
        if listener is None:
            self._forget_stale()
            listener = self._listeners[session_id] = _Listener(last_seen=self._clock())
        return listener

    def _forget_stale(self) -> None:
        now = self._clock()
        for session_id, listener in list(self._listeners.items()):
            if not listener.polls and not listener.busy() and now - listener.last_seen > FORGET_AFTER_S:
                del self._listeners[session_id]

    def forget(self, session_id: int) -> None:
        """The session ended: drop its listener, failing whatever still waits on it."""
        listener = self._listeners.pop(session_id, None)
        if listener is None:
            return
        listener.wake.set()
        for command in [*listener.queued, *listener.taken.values()]:
            if not command.answer.done():
                command.answer.set_exception(ConflictError("the session ended before it answered"))

    # the owner's side ------------------------------------------------------------
    def submit(self, session: Session, code: str) -> Command:
        """Queue ``code`` for ``session``'s process, or say why it cannot be."""
        if self._closing.is_set():
            raise ShuttingDown("the server is shutting down")
        listener = self._listeners.get(session.id)
        if listener is None:
            raise ConflictError(NO_SCOPE)
        if listener.busy() >= MAX_PENDING:
            raise TooManyRequests(
                f"session {session.name} already has {listener.busy()} commands waiting or running "
                f"(at most {MAX_PENDING}); wait for their answers"
            )
        loop = asyncio.get_running_loop()
        command = Command(secrets.token_urlsafe(12), code, loop.create_future())
        listener.queued.append(command)
        listener.wake.set()
        return command

    async def answer(
        self, session: Session, command: Command, still_running: Callable[[], Awaitable[bool]]
    ) -> tuple[bool, str]:
        """Wait for the session's answer to ``command``: (ok, output)."""
        deadline = self._clock() + ANSWER_WAIT_S
        try:
            while True:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise NoAnswer(
                        f"session {session.name} did not answer in {ANSWER_WAIT_S:g} s: its code may "
                        "be busy (a long evaluation, or the script holds the GIL); try again"
                    )
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(command.answer), min(STATUS_CHECK_S, remaining)
                    )
                except TimeoutError:
                    if not await still_running():
                        self.forget(session.id)
                        raise ConflictError(f"session {session.name} ended before it answered") from None
        finally:
            self._withdraw(session.id, command)

    def _withdraw(self, session_id: int, command: Command) -> None:
        """Nobody waits for ``command`` any more: unqueue it, and drop it once taken."""
        listener = self._listeners.get(session_id)
        if listener is not None:
            if command in listener.queued:
                listener.queued.remove(command)
            listener.taken.pop(command.id, None)
        if not command.answer.done():
            command.answer.cancel()


def session_refusal(session: Session) -> str | None:
    """Why ``nsml exec`` cannot reach ``session`` now, or None when it runs."""
    if session.status is SessionStatus.RUNNING:
        return None
    if session.status is SessionStatus.QUEUED:
        why = f" ({session.reason})" if session.reason else ""
        return f"session {session.name} is queued{why}; nsml exec works once it runs"
    return f"session {session.name} has ended ({session.status.value}); nsml exec needs a running session"
