"""The store's interface for several API servers on one database: leases and takeover.

Every server keeps a row with a lease it renews; sessions and submissions name the
server driving them (``driver``). A server whose lease ran out is taken over by exactly
one live server: the takeover and each claim are single conditional UPDATEs, so of
several survivors one wins, and the old server (if it only stalled) finds out at its
next renewal. :class:`AbstractStore` includes this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from datetime import datetime

from nsml.store.entities import Server, Session, SessionStatus


class ServerLeaseStore(ABC):
    @abstractmethod
    def register_server(
        self, server_id: str, url: str, host: str, pid: int, at: datetime, lease_s: float
    ) -> None:
        """Insert or refresh this server's row with a new lease (a restart clears a takeover)."""

    @abstractmethod
    def get_server(self, server_id: str) -> Server | None: ...

    @abstractmethod
    def list_servers(self) -> list[Server]:
        """Every server that ever registered, the most recently started first."""

    @abstractmethod
    def renew_lease(self, server_id: str, at: datetime, lease_s: float) -> bool:
        """Extend the lease; False when another server took this one's work over meanwhile."""

    @abstractmethod
    def release_lease(self, server_id: str, at: datetime) -> None:
        """A clean shutdown: the lease ends now, so a live server takes over at once."""

    @abstractmethod
    def take_over_server(self, server_id: str, by: str, at: datetime) -> bool:
        """Mark an expired (or stopped), not yet taken over server as taken over by ``by``;
        whether this call won (of racing servers exactly one does)."""

    @abstractmethod
    def claim_sessions(self, driver: str | None, by: str, statuses: Iterable[SessionStatus]) -> list[Session]:
        """Make ``by`` the driver of ``driver``'s sessions in ``statuses`` and return them.

        ``driver`` None claims rows from before leases; another server's rows are claimed
        only while that server stays taken over by ``by``."""

    @abstractmethod
    def fail_driven_submissions(self, driver: str | None, by: str, reason: str, at: datetime) -> int:
        """Fail the queued and running submissions ``driver`` evaluated (not counted against
        the limits), under the same rule as :meth:`claim_sessions`; how many."""

    @abstractmethod
    def request_session_stop(self, session_id: int, at: datetime) -> bool:
        """Ask the driver of an active session to stop it; False if it is not active."""

    @abstractmethod
    def take_stop_requests(self, driver: str) -> list[int]:
        """The active sessions of ``driver`` someone asked to stop, forgetting the requests."""
