"""Credits: 1 credit is one slot-minute, a slot being max(GPU_NUM, 1) of a session.

A ticker charges running sessions in the database (one UPDATE per owner and tick, never
read-modify-write in Python), tops up daily allowances, and stops the sessions of owners
who ran out. Enforcement is the operator's choice (``--credits`` / ``NSML_CREDITS=1``);
without it nothing is charged and ``run`` is never refused for credit.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from nsml.server.errors import PaymentRequired
from nsml.server.services.sessions import SessionService
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, CreditEvent, Session, User

log = logging.getLogger("nsml.credits")
OUT_OF_CREDIT = "the owner ran out of credits"


class CreditService:
    def __init__(self, store: AbstractStore, sessions: SessionService, settings: ServerSettings) -> None:
        self.store = store
        self.sessions = sessions
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enforced(self) -> bool:
        return self.settings.credits_enforced

    def check_can_start(self, owner: User, gpus: int) -> None:
        """Refuse a new run when its owner has no credit left (a positive balance may start one,
        which is stopped when the balance runs out)."""
        if not self.enforced:
            return
        balance = self.store.get_user(owner.name).credits
        if balance <= 0:
            raise PaymentRequired(
                f"NOT_ENOUGH_CREDIT: {owner.name} has {balance:.2f} credits; a session costs "
                f"{max(gpus, 1)} per minute (ask an admin: nsml admin credit grant {owner.name} N)"
            )

    def history(self, account: User, limit: int) -> list[CreditEvent]:
        """The account's latest credit events, newest first."""
        return self.store.credit_events(account.id, limit)

    def grant(self, account: User, amount: float, granted_by: str) -> None:
        """Add (or, negative, take) credits once, in one statement."""
        self.store.grant_credits(account.id, amount, f"granted by {granted_by}", datetime.now(timezone.utc))

    def set_daily(self, account: User, amount: float | None) -> None:
        """Set (None: clear) the daily allowance; when enforced, a tick tops it up at once."""
        self.store.set_daily_credits(account.id, amount)
        if self.enforced:
            self.tick()

    def charge_ended(self, session: Session) -> None:
        """Bill the minutes between the last tick and the session's end."""
        if self.enforced and session.ended_at is not None:
            self.store.charge_session(session.id, session.ended_at)

    def start(self) -> None:
        if self.enforced:
            self._thread = threading.Thread(target=self._loop, name="nsml-credits", daemon=True)
            self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def tick(self) -> None:
        now = datetime.now(timezone.utc)
        self.store.top_up_daily(now.date().isoformat(), now)
        for session_id, owner, balance in self.store.charge_running(now):
            log.info("stopping session #%s: %s has %.2f credits", session_id, owner, balance)
            self.sessions.stop_for(session_id, OUT_OF_CREDIT)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.credit_interval_s):
            try:
                self.tick()
            except Exception:  # keep charging on the next tick
                log.exception("charging credits failed")
