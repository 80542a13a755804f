"""Which phase of a competition is current, and what state each is in, by the clock.

A phase becomes current when the organiser starts it or when its ``starts_at`` passes,
whichever comes first; the first phase without a date is current from the moment it is
added. Deciding this from the clock (not from a background job having run) means a
submission made a second after ``starts_at`` already belongs to the new phase; carrying
the selected submissions over is the server's job (``services/phases``) and may follow.
"""

from __future__ import annotations

from datetime import datetime

from nsml.store.entities import Phase

UPCOMING, RUNNING, ENDED = "upcoming", "running", "ended"


def has_begun(phase: Phase, now: datetime) -> bool:
    return phase.started_at is not None or (phase.starts_at is not None and phase.starts_at <= now)


def current_phase(phases: list[Phase], now: datetime) -> Phase | None:
    """The last phase that began (a dateless first phase begins at once); None: no phases,
    or none began yet."""
    begun = [p for p in phases if has_begun(p, now) or (p.index == 0 and p.starts_at is None)]
    return begun[-1] if begun else None


def phase_state(phase: Phase, phases: list[Phase], now: datetime) -> str:
    current = current_phase(phases, now)
    if current is None or phase.index > current.index:
        return UPCOMING
    if phase.index < current.index or (phase.ends_at is not None and phase.ends_at <= now):
        return ENDED
    return RUNNING


def due_to_start(phases: list[Phase], now: datetime) -> Phase | None:
    """The current phase, if it began but was never marked started (its selections not yet
    carried over)."""
    current = current_phase(phases, now)
    return current if current is not None and current.started_at is None else None
