"""The thread that drives AutoML studies, like the janitor and the idle watch beside it.

It rounds on every running study a few times a second while any runs (a pruner acts on
reports as they arrive, not minutes later) and sleeps until woken when none does. A
study that survives a restart is simply running again on the first round.
"""

from __future__ import annotations

import logging
import threading

from nsml.server.services.automl import AutoMLService

log = logging.getLogger("nsml.automl")
ROUND_S = 0.25
IDLE_S = 30.0


class AutoMLDriver:
    def __init__(self, service: AutoMLService, round_s: float = ROUND_S) -> None:
        self.service = service
        self.round_s = round_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="nsml-automl", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A study was created: start rounding now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            running = self.round()
            self._wake.wait(self.round_s if running else IDLE_S)
            self._wake.clear()

    def round(self) -> bool:
        """One round over every running study; whether any still runs."""
        try:
            names = self.service.running_studies()
        except Exception:
            log.exception("AutoML studies could not be listed")
            return True
        for name in names:
            if self._stop.is_set():
                break
            try:
                self.service.tick(name)
            except Exception:  # one broken study must not stop the others
                log.exception("AutoML study %s: the round failed", name)
        return bool(names)
