"""Several API servers on one database: each holds a lease, and a live one takes over
the work of a server whose lease ran out.

Every server has an id (``NSML_SERVER_ID``; by default one fixed per host and home, so a
restarted server finds its own work) and a row in ``servers`` whose lease a thread renews
a few times per lease (``NSML_LEASE_S``). Sessions and submissions record the server
driving them. At start-up a server claims what it drove before a restart (and rows from
before leases existed); then, about every second, it looks for servers whose lease ran
out and takes them over, one winner among the survivors. Their running sessions and
evaluations lived in that server's processes (a local run dies with its server, a Ray
actor belongs to the server's Ray driver), so they fail with a reason naming the lost
server; their queued sessions run on the survivor. A server that only stalled finds at
its next renewal that it was taken over and shuts itself down, so no run goes on twice.

What a server keeps in memory goes through the database for the others: a stop asked
through any server is recorded on the session, and its driver's loop carries it out.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from nsml.config import pid_alive
from nsml.server.services.sessions import RESTART_REASON, SessionService
from nsml.server.services.submissions import RESTART_REASON as EVALUATION_RESTART_REASON
from nsml.server.services.submissions import SubmissionService
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, NotFound
from nsml.store.entities import ACTIVE_STATUSES, Server

log = logging.getLogger("nsml.server.leases")
SERVER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MIN_LEASE_S = 2.0
LOST_MARK = "stopped answering"


class ServerIdInUse(RuntimeError):
    """Another live server holds this server's id: both would claim each other's work."""


def default_server_id(home: Path) -> str:
    """The same id at every start of a server in ``home`` on this host."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]
    return f"{socket.gethostname()[:100]}-{digest}"


def lost_server_reason(server_id: str, what: str = "session") -> str:
    return f"its server {server_id} {LOST_MARK} while the {what} ran; run it again"


def lost_with_its_server(reason: str | None) -> bool:
    """Whether a session failed because its server stopped (a restart or a lost server)."""
    text = reason or ""
    return text == RESTART_REASON or (text.startswith("its server ") and LOST_MARK in text)


def read_lease_settings(settings: ServerSettings, environ: Mapping[str, str]) -> None:
    """NSML_SERVER_ID and NSML_LEASE_S; a bad one stops the server with one line."""
    server_id = environ.get("NSML_SERVER_ID", "").strip()
    if server_id and not SERVER_ID.fullmatch(server_id):
        raise SystemExit(
            f"error: NSML_SERVER_ID must be 1-128 letters, digits, '.', '_', ':' or '-', not {server_id!r}"
        )
    settings.server_id = server_id
    text = environ.get("NSML_LEASE_S", "").strip()
    if text:
        try:
            lease = float(text)
        except ValueError:
            lease = -1.0
        if not MIN_LEASE_S <= lease <= 3600:
            raise SystemExit(f"error: NSML_LEASE_S must be a number of seconds from 2 to 3600, not {text!r}")
        settings.lease_s = lease


def check_server_id(settings: ServerSettings) -> None:
    """Refuse, in one line and before serving, an id another live server holds; the same
    check at registration still settles two servers starting at once."""
    from nsml.store import open_store, store_exists

    settings.home.mkdir(parents=True, exist_ok=True)
    if not store_exists(settings.db_url):  # a new store: no server holds anything, and the
        return  # app must still see it as new (it registers the demo datasets then)
    store = open_store(settings.db_url)
    try:
        problem = _id_problem(store, settings.server_id or default_server_id(settings.home))
    finally:
        store.close()
    if problem:
        raise SystemExit(f"error: {problem}")


def _id_problem(store: AbstractStore, server_id: str) -> str | None:
    held = store.get_server(server_id)
    if held is None or held.state(_now()) != "live" or held.pid == os.getpid():
        return None
    if held.host == socket.gethostname() and not pid_alive(held.pid):
        return None  # a restart after a crash: the old process is gone
    return (
        f"the server id {server_id} is held by a live server (pid {held.pid} on "
        f"{held.host or 'an unknown host'}); give each server its own NSML_SERVER_ID"
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ServerLeases:
    """This server's lease, the takeover of lost servers, and stops asked elsewhere."""

    def __init__(
        self,
        store: AbstractStore,
        settings: ServerSettings,
        sessions: SessionService,
        submissions: SubmissionService,
        on_lost: Callable[[], None],
    ) -> None:
        self.store = store
        self.settings = settings
        self.server_id = settings.server_id
        self.lease_s = settings.lease_s
        self.sessions = sessions
        self.submissions = submissions
        self.on_lost = on_lost  # this server was taken over: it must stop serving
        self._stop = threading.Event()
        self._serving = threading.Event()  # set once this server recovered its own work
        self._thread: threading.Thread | None = None
        self._renewed = 0.0

    @property
    def tick_s(self) -> float:
        return min(1.0, self.lease_s / 4)

    def register(self) -> None:
        """Take this server's row and a fresh lease; refused while another live server
        holds the id (a restart after a crash finds its old process gone)."""
        problem = _id_problem(self.store, self.server_id)
        if problem:
            raise ServerIdInUse(problem)
        self.store.register_server(
            self.server_id, self.settings.public_url, socket.gethostname(), os.getpid(), _now(), self.lease_s
        )
        self._renewed = time.monotonic()

    def recover_own(self) -> None:
        """What this server drove before a restart, and rows from before leases: its
        running sessions and evaluations died with it; its queued sessions run now."""
        for driver in (self.server_id, None):
            claimed = self.store.claim_sessions(driver, self.server_id, ACTIVE_STATUSES)
            self.sessions.recover(claimed, RESTART_REASON)
            self.submissions.recover(driver, EVALUATION_RESTART_REASON)
        self._serving.set()

    def start(self) -> None:
        """Renew the lease from now on (start-up may take longer than a lease); lost
        servers are taken over once :meth:`recover_own` ran."""
        self._thread = threading.Thread(target=self._loop, name="nsml-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A clean shutdown: let go of the lease, so a live server takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.store.release_lease(self.server_id, _now())
        except Exception:
            log.exception("the lease of server %s could not be released", self.server_id)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                if not self.tick():
                    return
            except Exception:  # the database may be away for a moment: try again next tick
                log.exception("lease round of server %s failed", self.server_id)

    def tick(self) -> bool:
        """Renew the lease when due, take over lost servers, carry out stops asked
        elsewhere; False once this server learnt it was taken over."""
        if time.monotonic() - self._renewed >= self.lease_s / 4:
            if not self.store.renew_lease(self.server_id, _now(), self.lease_s):
                log.error(
                    "server %s was taken over by another server after its lease ran out; shutting down",
                    self.server_id,
                )
                self.on_lost()
                return False
            self._renewed = time.monotonic()
        if self._serving.is_set():
            self.take_over_lost()
            self.carry_out_stops()
        return True

    def take_over_lost(self) -> list[str]:
        """Take over every server whose lease ran out; the ids this server won."""
        won = []
        now = _now()
        for server in self.store.list_servers():
            mine_or_settled = server.id == self.server_id or server.taken_over_by is not None
            if mine_or_settled or server.lease_expires_at > now:
                continue
            if not self.store.take_over_server(server.id, self.server_id, now):
                continue  # another survivor won it
            won.append(server.id)
            claimed = self.store.claim_sessions(server.id, self.server_id, ACTIVE_STATUSES)
            self.sessions.recover(claimed, lost_server_reason(server.id))
            failed = self.submissions.recover(server.id, lost_server_reason(server.id, "evaluation"))
            if claimed or failed:
                log.warning(
                    "took over server %s: %d sessions (running ones failed, queued ones run here), "
                    "%d evaluations failed",
                    server.id,
                    len(claimed),
                    failed,
                )
        return won

    def carry_out_stops(self) -> None:
        """Stops asked through other servers for sessions this one runs; each in a thread
        of its own, since a stop waits for the run to end and the lease must not."""
        for session_id in self.store.take_stop_requests(self.server_id):
            threading.Thread(
                target=self._stop_session, args=(session_id,), name=f"nsml-stop-{session_id}", daemon=True
            ).start()

    def _stop_session(self, session_id: int) -> None:
        try:
            session = self.store.get_session_by_id(session_id)
            if not session.status.is_terminal:
                self.sessions.stop(session)
        except NotFound:
            return
        except Exception:
            log.exception("session #%d could not be stopped", session_id)

    def servers(self) -> list[Server]:
        return self.store.list_servers()

    def active_sessions_by_driver(self) -> dict[str, int]:
        """How many queued and running sessions each server drives."""
        counts: dict[str, int] = {}
        for session in self.store.list_sessions(statuses=ACTIVE_STATUSES):
            if session.driver is not None:
                counts[session.driver] = counts.get(session.driver, 0) + 1
        return counts
