"""The store's interface for competition phases, final selections and re-scores.

Kept apart from ``base`` so the phase rules live in one place; :class:`AbstractStore`
includes it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from datetime import datetime
from typing import Any

from nsml.store.entities import Phase, Submission


class PhaseStore(ABC):
    """Phases of a dataset's competition, who picked which submissions, and re-scores."""

    @abstractmethod
    def create_phase(self, dataset_id: int, name: str, test_size: int, at: datetime, **options: Any) -> Phase:
        """Append a phase (next index). ``options``: starts_at, ends_at, blind, daily_limit,
        total_limit. Raises :class:`Conflict` if the dataset has a phase of that name."""

    @abstractmethod
    def list_phases(self, dataset: str) -> list[Phase]:
        """The dataset's phases in order."""

    @abstractmethod
    def mark_phase_started(self, phase_id: int, at: datetime) -> Phase: ...

    @abstractmethod
    def select_submissions(
        self, dataset_id: int, owner_id: int, phase_id: int | None, ids: Collection[int]
    ) -> None:
        """Make ``ids`` the owner's whole selection in that phase (None: no phases), at once."""

    @abstractmethod
    def carry_submission(
        self, submission_id: int, phase_id: int, total: int, at: datetime, driver: str | None = None
    ) -> Submission:
        """A queued copy of a submission in another phase; it does not count against limits."""

    @abstractmethod
    def record_rescore(
        self, submission_id: int, public: float, private: float, reason: str, at: datetime
    ) -> Submission:
        """Replace the scores, keeping the earlier ones (if any) in ``score_history``."""
