"""The store interface the server's services are written against.

Keeping it small and free of SQL lets a second backend (or a test double for a service
unit test) exist without touching the services, the way MLflow's tracking client sits on
``AbstractStore``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from nsml.store.entities import (
    CacheEntry,
    Checkpoint,
    CreditEvent,
    Dataset,
    MetricPoint,
    Session,
    SessionStatus,
    SharedResource,
    Submission,
    User,
)
from nsml.store.lease_base import ServerLeaseStore
from nsml.store.phase_base import PhaseStore


class NotFound(LookupError):
    """The record does not exist (or is not visible to the caller)."""


class Conflict(ValueError):
    """The record already exists, or the requested change no longer applies."""


class LimitReached(ValueError):
    """A submission limit is used up; ``next_allowed`` says when the next one may start."""

    def __init__(self, message: str, next_allowed: datetime | None) -> None:
        super().__init__(message)
        self.next_allowed = next_allowed


class AccountStore(ABC):
    """People and teams (one namespace), their API tokens, and invites."""

    @abstractmethod
    def get_or_create_user(self, name: str) -> User: ...

    @abstractmethod
    def add_token(self, user_id: int, token_hash: str, expires_at: datetime | None) -> None: ...

    @abstractmethod
    def revoke_token(self, token_hash: str, at: datetime) -> bool: ...

    @abstractmethod
    def revoke_tokens_of(self, user_id: int, at: datetime) -> int: ...

    @abstractmethod
    def create_account(
        self, name: str, kind: str, role: str, password_hash: str | None, team: str | None = None
    ) -> User:
        """Raises :class:`Conflict` when the name is taken (users and teams share names)."""

    @abstractmethod
    def get_user(self, name: str) -> User: ...

    @abstractmethod
    def list_users(self) -> list[User]: ...

    @abstractmethod
    def update_user(self, name: str, **values: Any) -> User:
        """Set role, password_hash, disabled_at or team (a team's name, or None)."""

    @abstractmethod
    def team_members(self, team: str) -> list[User]: ...

    @abstractmethod
    def create_invite(
        self, code_hash: str, role: str, created_by: int, expires_at: datetime | None, max_uses: int
    ) -> None: ...

    @abstractmethod
    def redeem_invite(self, code_hash: str, at: datetime) -> str:
        """Use one registration of an invite; returns its role. Raises :class:`NotFound`."""

    @abstractmethod
    def user_for_token(self, token_hash: str, now: datetime) -> tuple[User, datetime | None] | None:
        """The account a live token acts for, and until when the token lasts."""


class DatasetStore(ABC):
    """Datasets and the competition options an organiser sets on them."""

    @abstractmethod
    def create_dataset(
        self,
        name: str,
        owner_id: int,
        metric: str,
        description: str,
        train_size: int,
        test_size: int,
        size_bytes: int,
    ) -> Dataset: ...

    @abstractmethod
    def get_dataset(self, name: str) -> Dataset: ...

    @abstractmethod
    def list_datasets(self) -> list[Dataset]: ...

    @abstractmethod
    def update_dataset(self, name: str, **options: Any) -> Dataset:
        """Set competition options: public_fraction, daily_limit, total_limit,
        eval_timeout_s, closed_at, round_public, description, rules, deadline."""

    @abstractmethod
    def bump_dataset_version(
        self, name: str, version: int, train_size: int, test_size: int, size_bytes: int
    ) -> Dataset:
        """Record new files as version ``version + 1``, only if ``version`` is still the
        current one (else :class:`Conflict`: another push replaced it meanwhile)."""

    @abstractmethod
    def remove_dataset(self, name: str, at: datetime) -> None:
        """Hide the dataset from every lookup; its row stays for its sessions' names."""

    @abstractmethod
    def dataset_was_removed(self, name: str) -> bool: ...


class SessionStore(ABC):
    """Sessions, numbered per (owner, dataset), and their status transitions."""

    @abstractmethod
    def create_session(
        self,
        owner_id: int,
        dataset_id: int,
        entry: str,
        args: Sequence[str],
        description: str,
        gpus: int,
        token_hash: str,
        parent: str | None = None,
        resume_checkpoint: str | None = None,
        cpus: int = 0,
        memory_mb: int = 0,
        shm_mb: int = 0,
        driver: str | None = None,
    ) -> Session:
        """Create a queued session with the next number for (owner, dataset), atomically;
        ``driver``: the id of the server that runs it."""

    @abstractmethod
    def requeue_session(
        self, session_id: int, token_hash: str, resume_checkpoint: str, driver: str | None = None
    ) -> Session | None:
        """Queue an ended session again (``resume``), driven by ``driver``; None if it is not ended."""

    @abstractmethod
    def get_session(self, owner: str, dataset: str, number: int) -> Session: ...

    @abstractmethod
    def get_session_by_id(self, session_id: int) -> Session: ...

    @abstractmethod
    def ended_sessions(self, session_ids: Sequence[int]) -> set[int]:
        """Those of ``session_ids`` that have ended (or no longer exist), in one query."""

    @abstractmethod
    def session_for_token(self, token_hash: str) -> Session | None: ...

    @abstractmethod
    def list_sessions(
        self,
        owner: str | Sequence[str] | None = None,
        dataset: str | None = None,
        statuses: Iterable[SessionStatus] | None = None,
        limit: int | None = None,
    ) -> list[Session]:
        """Newest first."""

    @abstractmethod
    def count_sessions(self, statuses: Iterable[SessionStatus]) -> dict[str, int]:
        """How many sessions in ``statuses`` each owner has (owners with none left out)."""

    @abstractmethod
    def transition_session(
        self,
        session_id: int,
        to: SessionStatus,
        *,
        from_statuses: Iterable[SessionStatus],
        exit_code: int | None = None,
        reason: str | None = None,
        at: datetime,
        driver: str | None = None,
    ) -> Session | None:
        """Move a session to ``to`` only if it is in one of ``from_statuses`` (and, with
        ``driver``, only while that server drives it: one that was taken over cannot
        end the session a survivor re-queued).

        Returns the updated session, or None when the session was no longer in one of
        those statuses (someone else's transition won), so races between a stop and a
        natural exit resolve in the database rather than in Python.
        """

    @abstractmethod
    def set_queue_reason(self, session_id: int, reason: str | None) -> None:
        """Why a queued session waits; ignored once it left the queue."""

    @abstractmethod
    def set_session_description(self, session_id: int, description: str) -> Session:
        """Replace a session's memo (``nsml memo``), shown in ``nsml ps``."""

    @abstractmethod
    def set_session_token(self, session_id: int, token_hash: str) -> None:
        """Replace a session's token (a re-queued session gets a fresh one)."""

    @abstractmethod
    def delete_session(self, session_id: int) -> None: ...


class MetricStore(ABC):
    """What a session reports while it runs: metrics, and its checkpoints' records."""

    @abstractmethod
    def add_reports(
        self, session_id: int, reports: Sequence[dict[str, Any]], batch_id: str | None = None
    ) -> bool:
        """Store a batch of ``{step, scope, summary, metrics, time}`` reports.

        False, storing nothing, when a batch of this ``batch_id`` was stored before: the
        SDK sends a batch again when the answer to it was lost."""

    @abstractmethod
    def list_metrics(self, session_id: int) -> list[MetricPoint]: ...

    @abstractmethod
    def latest_metrics(self, session_ids: Sequence[int]) -> dict[int, dict[str, float]]:
        """Each session's last numeric value of every key it reported, in one query
        (a listing of many sessions shows them as columns)."""

    @abstractmethod
    def put_checkpoint(
        self,
        session_id: int,
        name: str,
        elapsed_s: float | None,
        summary: dict[str, Any] | None,
        size_bytes: int,
        at: datetime,
    ) -> Checkpoint: ...

    @abstractmethod
    def list_checkpoints(self, session_id: int) -> list[Checkpoint]: ...

    @abstractmethod
    def delete_checkpoint(self, session_id: int, name: str) -> bool:
        """Forget a checkpoint; False when there was none of that name."""

    @abstractmethod
    def get_checkpoint(self, session_id: int, name: str) -> Checkpoint: ...


class CompetitionStore(ABC):
    """Submissions of checkpoints to a dataset's hidden test set, under its limits."""

    @abstractmethod
    def create_submission(
        self,
        dataset: Dataset,
        owner_id: int,
        session: Session,
        checkpoint: str,
        total: int,
        at: datetime,
        phase_id: int | None = None,
        driver: str | None = None,
    ) -> Submission:
        """Record a queued submission, atomically checking the dataset's limits.

        Raises :class:`LimitReached`. Failed submissions do not count, unless they failed
        after the test inputs were sent (``inputs_sent_at``).
        """

    @abstractmethod
    def update_submission(self, submission_id: int, **values: Any) -> Submission:
        """Set progress, or finish with status, reason and scores."""

    @abstractmethod
    def get_submission(self, submission_id: int) -> Submission: ...

    @abstractmethod
    def list_submissions(self, dataset: str, owner: str | None = None) -> list[Submission]:
        """Oldest first."""

    @abstractmethod
    def count_submissions(
        self, dataset_id: int, owner_id: int, since: datetime | None, phase_id: int | None = None
    ) -> tuple[int, datetime | None]:
        """(submissions that count against limits since ``since``, the oldest of them)."""


class CacheStore(ABC):
    """``nsml.cache`` entries, and the storage an account uses (which its quota caps)."""

    @abstractmethod
    def get_cache(self, owner_id: int, key: str, hit: bool = False) -> CacheEntry | None:
        """The entry, counting a hit when ``hit``."""

    @abstractmethod
    def add_cache(
        self, owner_id: int, key: str, function: str, dataset: str | None, size_bytes: int
    ) -> tuple[CacheEntry, bool]:
        """Record an entry; (the entry, True) if this call created it, (the existing, False) if not."""

    @abstractmethod
    def list_cache(self, owner_id: int) -> list[CacheEntry]: ...

    @abstractmethod
    def delete_cache(self, owner_id: int, key: str) -> bool: ...

    @abstractmethod
    def storage_used(self, owner_id: int) -> int:
        """Bytes of the account's checkpoints (of its sessions) and cache entries together."""


class SharedResourceStore(ABC):
    """Folders an organiser publishes for every account and session to read."""

    @abstractmethod
    def put_shared(
        self,
        name: str,
        owner_id: int,
        description: str,
        size_bytes: int,
        files: int,
        version: str,
        replace: bool,
    ) -> tuple[SharedResource, str | None]:
        """Record a resource, or point an existing one at a new version when ``replace``.

        Returns (the resource, the version it replaced or None). Raises :class:`Conflict`
        when the name is taken and ``replace`` is false.
        """

    @abstractmethod
    def get_shared(self, name: str) -> SharedResource:
        """Raises :class:`NotFound`."""

    @abstractmethod
    def list_shared(self) -> list[SharedResource]: ...

    @abstractmethod
    def delete_shared(self, name: str) -> SharedResource | None:
        """Remove the record; the removed one (its version's files are the caller's to free)."""


class CreditStore(ABC):
    """Balances, daily allowances and the per-minute charge of running sessions."""

    @abstractmethod
    def grant_credits(self, account_id: int, delta: float, reason: str, at: datetime) -> float:
        """Add ``delta`` (may be negative) to a balance in one statement; the new balance."""

    @abstractmethod
    def set_daily_credits(self, account_id: int, amount: float | None) -> None: ...

    @abstractmethod
    def top_up_daily(self, today: str, at: datetime) -> int:
        """Raise each balance with a daily allowance to it, once per UTC day."""

    @abstractmethod
    def charge_running(self, at: datetime) -> list[tuple[int, str, float]]:
        """Charge every running session since its last charge, per minute and slot.

        Returns (session id, owner, owner's balance) for sessions whose owner is out.
        """

    @abstractmethod
    def charge_session(self, session_id: int, until: datetime) -> float | None:
        """Charge one session from its last charge to ``until`` (its end: the time since the
        last tick would otherwise go unbilled); the owner's new balance, or None if nothing was due."""

    @abstractmethod
    def credit_events(self, account_id: int, limit: int) -> list[CreditEvent]: ...


class AbstractStore(
    AccountStore,
    PhaseStore,
    DatasetStore,
    SessionStore,
    MetricStore,
    CompetitionStore,
    CacheStore,
    SharedResourceStore,
    CreditStore,
    ServerLeaseStore,
):
    """Every domain together, plus the store's own life cycle."""

    @property
    @abstractmethod
    def created(self) -> bool:
        """True when opening the store found an empty database (the server seeds a new one)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connections; the store is not used afterwards."""
