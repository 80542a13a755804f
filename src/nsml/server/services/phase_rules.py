"""What a dataset's phases mean for one submission, limit or board, for ``submissions``.

A dataset without phases gets exactly what it got before: its own test set and limits,
and a board of all its submissions. With phases, a submission goes to the current
phase's test set under that phase's limits, and a board shows one phase; a blind phase
shows no scores to participants until it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from nsml.artifacts import ArtifactStore
from nsml.evaluation.metrics import metric_info
from nsml.evaluation.phases import ENDED, current_phase, phase_state
from nsml.evaluation.selection import final_selection
from nsml.server.errors import ConflictError, NotFoundError
from nsml.store import AbstractStore, Dataset, Phase, Submission


def test_root(artifacts: ArtifactStore, dataset: str, phase: str | None) -> Path:
    """The folder whose ``test/`` a submission of ``phase`` is scored on."""
    if phase is None:
        return artifacts.local_dataset_dir(dataset)
    return artifacts.local_phase_dir(dataset, phase)


@dataclass(frozen=True)
class Target:
    """Where a new submission goes: its phase, its test set, and the limits that apply."""

    phase: Phase | None
    test_root: Path
    limits: Dataset  # the dataset, with the phase's limits in place of its own


def submission_target(
    store: AbstractStore, artifacts: ArtifactStore, dataset: Dataset, now: datetime
) -> Target:
    phases = store.list_phases(dataset.name)
    if not phases:
        return Target(None, test_root(artifacts, dataset.name, None), dataset)
    phase = current_phase(phases, now)
    if phase is None:
        first = phases[0]
        raise ConflictError(
            f"the competition on {dataset.name} starts with phase {first.name} "
            f"at {first.starts_at:%Y-%m-%d %H:%M} UTC"
        )
    if phase_state(phase, phases, now) == ENDED:
        raise ConflictError(
            f"phase {phase.name} of {dataset.name} has ended; "
            "submissions open again when the next phase starts"
        )
    limits = replace(dataset, daily_limit=phase.daily_limit, total_limit=phase.total_limit)
    return Target(phase, test_root(artifacts, dataset.name, phase.name), limits)


@dataclass(frozen=True)
class BoardScope:
    """The submissions one board ranks, and whether their scores are withheld."""

    phase: Phase | None
    submissions: list[Submission]
    final: set[int]  # ids in each participant's final selection
    phases: list[Phase]  # all of the dataset's
    blind: bool
    blind_until: datetime | None


def board_scope(store: AbstractStore, dataset: Dataset, phase_name: str | None, now: datetime) -> BoardScope:
    """``phase_name`` (default: the current phase) of a dataset with phases."""
    phases = store.list_phases(dataset.name)
    submissions = store.list_submissions(dataset.name)
    phase = None
    if phase_name is not None:
        phase = next((p for p in phases if p.name == phase_name), None)
        if phase is None:
            raise NotFoundError(
                f"{dataset.name} has no phase {phase_name!r}; `nsml phase ls {dataset.name}` lists them"
            )
    elif phases:
        phase = current_phase(phases, now)
    if phases:
        submissions = [s for s in submissions if phase is not None and s.phase_id == phase.id]
    blind = phase is not None and _still_blind(dataset, phase, phases, now)
    final = final_selection(submissions, dataset.max_selected, metric_info(dataset.metric).higher_is_better)
    return BoardScope(phase, submissions, final, phases, blind, phase.ends_at if blind and phase else None)


def hidden_by_blind_phase(
    store: AbstractStore,
    dataset: Dataset,
    submission: Submission,
    now: datetime,
    phases: list[Phase] | None = None,
) -> bool:
    """Whether a participant's own scores are still withheld (a blind phase not yet over).

    ``phases``: the dataset's, when the caller read them already (a board, for each row)."""
    if submission.phase_id is None:
        return False
    if phases is None:
        phases = store.list_phases(dataset.name)
    phase = next((p for p in phases if p.id == submission.phase_id), None)
    return phase is not None and _still_blind(dataset, phase, phases, now)


def _still_blind(dataset: Dataset, phase: Phase, phases: list[Phase], now: datetime) -> bool:
    """A blind phase shows its scores once it ended, or once the competition closed."""
    return phase.blind and not dataset.closed and phase_state(phase, phases, now) != ENDED


def current(store: AbstractStore, dataset: Dataset, now: datetime) -> Phase | None:
    """The current phase, whose limits a participant is shown (None: no phases)."""
    return current_phase(store.list_phases(dataset.name), now)
