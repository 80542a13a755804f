"""Copies of the files a runner writes without telling the store (a session's log and its
metric event files) kept up to date in the bucket, so another server can show them.

They are polled: a log that changed is uploaded again, at most every ``interval_s`` plus
a second per MiB it holds (a long log is not sent over and over), and at once when the
platform appends its own line (a session's start or end) or the server stops. A log
is uploaded only if it is a regular file reached without a link: a session that swaps
it for a link to a server file gets nothing uploaded.
"""

from __future__ import annotations

import logging
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from nsml.artifacts.bucket import BadObjectKey, Bucket

log = logging.getLogger("nsml.artifacts")
MIB = 1024 * 1024


class Mirror:
    """``log_path(id)`` and ``metrics_dir(id)`` are where the local store keeps them."""

    def __init__(
        self,
        bucket: Bucket,
        log_path: Callable[[int], Path],
        metrics_dir: Callable[[int], Path],
        interval_s: float,
    ) -> None:
        self.bucket = bucket
        self.log_path = log_path
        self.metrics_dir = metrics_dir
        self.interval_s = interval_s
        self._sent: dict[int, tuple[int, int, float]] = {}  # id -> (size, mtime ns, when) uploaded
        self._scalars: set[int] = set()
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nsml-artifact-mirror", daemon=True)
        self._thread.start()

    def log_key(self, session_id: int) -> str:
        return self.bucket.key("sessions", str(session_id), "log.txt")

    def watch(self, session_id: int) -> None:
        with self._guard:
            self._sent.setdefault(session_id, (-1, -1, 0.0))

    def forget(self, session_id: int) -> None:
        with self._guard:
            self._sent.pop(session_id, None)
            self._scalars.discard(session_id)

    def mark_scalars(self, session_id: int) -> None:
        with self._guard:
            self._scalars.add(session_id)

    def settle(self, session_id: int) -> None:
        """The log and metric files as they are now, for a session that just ended: once
        its end is recorded, every server sees all it wrote, not a pass later."""
        with self._guard:
            scalars = session_id in self._scalars
            self._scalars.discard(session_id)
        self.flush_log(session_id)
        if scalars:
            self._flush_scalars(session_id)

    def stop(self) -> None:
        """A last pass after the thread ended: every log as it is now."""
        self._stop.set()
        self._thread.join(timeout=30)
        self._try_pass(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._try_pass(final=False)

    def _try_pass(self, final: bool) -> None:
        try:
            self._pass(final)
        except OSError as exc:  # the next pass tries again; the store's errors name no content
            log.warning("mirroring logs to the object store failed: %s", exc)

    def _pass(self, final: bool) -> None:
        with self._guard:
            logs, scalars = list(self._sent), set(self._scalars)
            self._scalars.clear()
        for session_id in logs:
            self.flush_log(session_id, now=final)
        for session_id in scalars:
            self._flush_scalars(session_id)

    def flush_log(self, session_id: int, now: bool = True) -> None:
        """The log if it changed since its last upload (and, unless ``now``, that upload
        is old enough for its size)."""
        path = self.log_path(session_id)
        try:
            status = path.lstat()
        except FileNotFoundError:
            return
        if not stat.S_ISREG(status.st_mode):
            return
        with self._guard:
            size, mtime, when = self._sent.get(session_id, (-1, -1, 0.0))
        if (size, mtime) == (status.st_size, status.st_mtime_ns):
            return
        if not now and time.monotonic() - when < self.interval_s + size / MIB:
            return
        self.bucket.upload(path, self.log_key(session_id))
        with self._guard:
            self._sent[session_id] = (status.st_size, status.st_mtime_ns, time.monotonic())

    def _flush_scalars(self, session_id: int) -> None:
        folder = self.metrics_dir(session_id)
        try:
            files = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink()]
        except OSError:
            return
        for path in files:
            try:
                key = self.bucket.key("sessions", str(session_id), "tensorboard", path.name)
            except BadObjectKey:
                continue  # not a file the platform wrote
            self.bucket.upload(path, key)
