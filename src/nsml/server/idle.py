"""Idle sessions (NSML's "zombies"): running, yet neither reporting nor using the CPU.

A session holds a slot (and maybe GPUs) until it ends, so one stuck on a lock or left
waiting for input costs everybody else. A watcher samples each running session's CPU
time from the runner every few seconds; a sample that grew by more than a small fraction
of a core, a report or a checkpoint counts as a sign of life. After
``NSML_IDLE_AFTER_S`` without one the session is flagged idle (``ps`` and the web UI say
since when) and its owner is notified, once per idle spell; the next sign of life clears
the flag. A session whose CPU time the runner cannot read is never flagged: silence in
its reports alone does not mean it is stuck.

The state lives in the server's memory: it describes processes of this server, which a
restart ends anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from nsml.runners import Runner
from nsml.store import AbstractStore, Session, SessionStatus

log = logging.getLogger("nsml.idle")

# more CPU than this share of one core between two samples is a sign of life (a sleeping
# Python process with the SDK's sender thread uses well under 1 %)
BUSY_SHARE = 0.05


@dataclass
class _Watch:
    last_active: float  # monotonic
    cpu: float | None = None
    sampled_at: float = 0.0
    idle_since: datetime | None = None
    notified: bool = False


class IdleWatch:
    def __init__(
        self,
        store: AbstractStore,
        runner: Runner,
        idle_after_s: float,
        on_idle: Callable[[Session, datetime], None],
    ) -> None:
        self.store = store
        self.runner = runner
        self.idle_after_s = idle_after_s
        self.on_idle = on_idle
        self.interval_s = max(0.5, min(30.0, idle_after_s / 4))
        self._watches: dict[int, _Watch] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.idle_after_s <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="nsml-idle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def idle_since(self, session_id: int) -> datetime | None:
        with self._lock:
            watch = self._watches.get(session_id)
            return watch.idle_since if watch is not None else None

    def alive(self, session_id: int) -> None:
        """A report or a checkpoint arrived: the session is not idle."""
        with self._lock:
            watch = self._watches.get(session_id)
            if watch is not None:
                watch.last_active = time.monotonic()
                watch.idle_since, watch.notified = None, False

    # the watcher ----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # never let one bad sample end the watch
                log.exception("idle check failed")

    def check(self) -> None:
        """Sample every running session once; flag and notify those idle long enough."""
        running = self.store.list_sessions(statuses=[SessionStatus.RUNNING])
        now = time.monotonic()
        newly_idle: list[tuple[Session, datetime]] = []
        with self._lock:
            for gone in set(self._watches) - {s.id for s in running}:
                del self._watches[gone]
        for session in running:
            used = self.runner.cpu_seconds(session.id)  # reads /proc or a cgroup: outside the lock
            with self._lock:
                watch = self._watches.setdefault(session.id, _Watch(last_active=now))
                if used is None:  # the runner cannot tell: never flagged
                    watch.last_active, watch.cpu, watch.idle_since = now, None, None
                    continue
                if watch.cpu is not None and used - watch.cpu > BUSY_SHARE * (now - watch.sampled_at):
                    watch.last_active, watch.idle_since, watch.notified = now, None, False
                watch.cpu, watch.sampled_at = used, now
                quiet = now - watch.last_active
                if quiet >= self.idle_after_s and watch.idle_since is None:
                    watch.idle_since = datetime.now(timezone.utc) - timedelta(seconds=quiet)
                if watch.idle_since is not None and not watch.notified:
                    watch.notified = True
                    newly_idle.append((session, watch.idle_since))
        for session, since in newly_idle:
            log.info("session %s is idle since %s", session.name, since.isoformat())
            self.on_idle(session, since)
