"""Where each queued session and submission stands, and what it waits for.

Read from the real state, never guessed: a submission's place and reason from the
evaluation slots (``evaluation_slots``: the same fair-share rule that will hand out the
next slot), a session's from the runner's line and the reason the runner gave it
(``runners.fairshare`` / ``runners.local``: the per-user cap, GPUs), with the counts of
what holds the slots taken from the store. Organisers see the whole line (``GET
/queue``); everybody sees their own (``nsml ps``, ``nsml submission ls``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nsml.runners.fairshare import next_turn
from nsml.server.auth import Principal
from nsml.server.errors import Forbidden
from nsml.server.services.evaluation_slots import SlotsSnapshot
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, Session, SessionStatus, Submission, SubmissionStatus
from nsml.store.entities import ACTIVE_STATUSES

if TYPE_CHECKING:  # the submission service imports this module
    from nsml.server.services.sessions import SessionService
    from nsml.server.services.submissions import SubmissionService

# how the runners word a wait (runners.fairshare.cap_reason, runners.local / ray_cluster)
CAP_REASON = "Per-user limit"
MACHINE_REASON = "No machine available"


@dataclass(frozen=True)
class QueueState:
    """Where a queued item stands (1: the next to start) and what it waits for."""

    queue_position: int | None = None
    waiting_for: str | None = None


@dataclass(frozen=True)
class QueueEntry:
    """One session or submission in the line or holding a slot, for the organiser."""

    kind: str  # "session" or "submission"
    id: int
    name: str  # the session's name ("owner/dataset/N")
    owner: str
    dataset: str
    status: str  # "queued" or "running"
    since: datetime  # queued at, or started at while running
    gpus: int = 0
    checkpoint: str | None = None
    queue_position: int | None = None
    waiting_for: str | None = None


@dataclass(frozen=True)
class SlotUse:
    kind: str  # "session" or "evaluation"
    total: int
    per_user: int  # 0: no cap
    in_use: int
    holders: dict[str, int]  # owner -> slots held


@dataclass(frozen=True)
class QueueOverview:
    slots: list[SlotUse]
    entries: list[QueueEntry]


ORGANISER_CANCEL = "cancelled by the organiser of the dataset"


def cancelled_line(cancelled: Submission, before_start: bool = False) -> str:
    """The platform's last line in a cancelled evaluation's log: who stopped it."""
    by = (
        "the organiser of the dataset"
        if (cancelled.reason or "").startswith(ORGANISER_CANCEL)
        else "its owner"
    )
    return f"submission cancelled by {by}" + (" before it started" if before_start else "")


def cancelled_outcome(submission: Submission, by_owner: bool) -> dict[str, Any]:
    """The record of a cancelled submission. It does not count against the limits, unless
    its owner cancelled it after the test inputs reached the script (as for a failure:
    when a run ends could otherwise carry them out for free). An organiser's cancel never
    counts: stopping a stuck evaluation is not the participant's doing."""
    if not by_owner:
        reason = f"{ORGANISER_CANCEL}; it does not count against the limits"
        return {"status": "cancelled", "reason": reason, "inputs_sent_at": None}
    if submission.inputs_sent_at is not None:
        reason = "cancelled after the test inputs reached the script, so it counts against the limits"
    else:
        reason = "cancelled before the test inputs reached the script; it does not count against the limits"
    return {"status": "cancelled", "reason": reason}


def fair_share_order(snapshot: SlotsSnapshot) -> list[tuple[str, int | None]]:
    """The waiting tickets in the order the slots will take them if nothing else changes:
    the fair-share rule applied again after each (owners at their cap last)."""
    waiting = [(owner, key) for owner, key, _ in snapshot.waiting]
    going = dict(snapshot.going)
    order: list[tuple[str, int | None]] = []
    while waiting:
        ticket = next_turn(waiting, lambda t: t[0], going, snapshot.per_owner)
        if ticket is None:  # the rest wait for their owner's own slot to free
            order.extend(waiting)
            break
        waiting.remove(ticket)
        order.append(ticket)
        going[ticket[0]] = going.get(ticket[0], 0) + 1
    return order


def _evaluation_wait(snapshot: SlotsSnapshot, owner: str) -> str:
    going = snapshot.going.get(owner, 0)
    if snapshot.per_owner and going >= snapshot.per_owner:
        return f"waits for your evaluation slot ({going} of {snapshot.per_owner} in use)"
    in_use = sum(snapshot.going.values())
    if in_use >= snapshot.total:
        return f"waits for a free evaluation slot ({in_use} of {snapshot.total} in use)"
    return "waits for its turn: another user's evaluation goes first (fair share)"


class SubmissionQueue:
    def __init__(
        self,
        store: AbstractStore,
        submissions: SubmissionService,
        sessions: SessionService,
        settings: ServerSettings,
    ) -> None:
        self.store = store
        self.submissions = submissions
        self.sessions = sessions
        self.settings = settings

    # submissions -------------------------------------------------------------------------
    def submission_states(self) -> dict[int, QueueState]:
        """Every queued submission's place and reason, by id."""
        snapshot = self.submissions.slots.snapshot()
        states: dict[int, QueueState] = {}
        for position, (owner, key) in enumerate(fair_share_order(snapshot), start=1):
            if key is not None:
                states[key] = QueueState(position, _evaluation_wait(snapshot, owner))
        return states

    def with_states(self, submissions: Iterable[Submission]) -> list[tuple[Submission, QueueState]]:
        chosen = list(submissions)
        states = self.submission_states() if any(s.status is SubmissionStatus.QUEUED for s in chosen) else {}
        return [(s, states.get(s.id, QueueState())) for s in chosen]

    # sessions ----------------------------------------------------------------------------
    def session_states(self, sessions: Iterable[Session]) -> dict[int, QueueState]:
        """Each queued session's place in the runner's line and what it waits for."""
        queued = [s for s in sessions if s.status is SessionStatus.QUEUED]
        if not queued:
            return {}
        running = self.store.count_sessions([SessionStatus.RUNNING])  # per owner
        states = {}
        for session in queued:
            position = self.sessions.queue_position(session)
            states[session.id] = QueueState(position, self._session_wait(session, running))
        return states

    def _session_wait(self, session: Session, running: dict[str, int]) -> str:
        reason = session.reason or ""
        if reason.startswith(CAP_REASON):
            mine = running.get(session.owner, 0)
            return f"waits for your session slot ({mine} of {self.settings.max_sessions_per_user} in use)"
        if reason.startswith(MACHINE_REASON):
            if "GPU" in reason and session.gpus == 1:
                return "waits for a GPU"
            if "GPU" in reason:
                return f"waits for {session.gpus} free GPUs"
            return "waits for" + reason.split("waiting for", 1)[-1]  # a Ray node with ...
        in_use = sum(running.values())
        return f"waits for a free session slot ({in_use} of {self.settings.max_concurrent} in use)"

    # the organiser's view ------------------------------------------------------------------
    def overview(self, who: Principal) -> QueueOverview:
        """Every queued and running session and submission the caller organises (an admin:
        all of them), and who holds the slots."""
        if not (who.is_admin or who.is_organiser):
            raise Forbidden("only an organiser or an admin sees the whole queue; `nsml ps` shows yours")
        datasets = {d.name for d in self.store.list_datasets() if who.can_organise(d)}
        sessions = [
            s
            for s in self.store.list_sessions(statuses=ACTIVE_STATUSES)
            if who.is_admin or s.dataset in datasets or who.owns(s.owner)
        ]
        submissions = [
            s
            for name in sorted(datasets)
            for s in self.store.list_submissions(name)
            if s.status in (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING)
        ]
        entries = [self._session_entry(s, state) for s, state in self._sessions_with_states(sessions)]
        entries += [self._submission_entry(s, state) for s, state in self.with_states(submissions)]
        entries.sort(key=lambda e: (e.status != "running", e.queue_position or 0, e.since))
        return QueueOverview(self._slot_use(), entries)

    def _sessions_with_states(self, sessions: list[Session]) -> list[tuple[Session, QueueState]]:
        states = self.session_states(sessions)
        return [(s, states.get(s.id, QueueState())) for s in sessions]

    def _slot_use(self) -> list[SlotUse]:
        running = self.store.list_sessions(statuses=[SessionStatus.RUNNING])
        holders: dict[str, int] = {}
        for session in running:
            holders[session.owner] = holders.get(session.owner, 0) + 1
        snapshot = self.submissions.slots.snapshot()
        return [
            SlotUse(
                "session",
                self.settings.max_concurrent,
                self.settings.max_sessions_per_user,
                len(running),
                holders,
            ),
            SlotUse(
                "evaluation",
                snapshot.total,
                snapshot.per_owner,
                sum(snapshot.going.values()),
                dict(snapshot.going),
            ),
        ]

    @staticmethod
    def _session_entry(session: Session, state: QueueState) -> QueueEntry:
        running = session.status is SessionStatus.RUNNING
        return QueueEntry(
            "session", session.id, session.name, session.owner, session.dataset, session.status.value,
            (session.started_at if running else None) or session.created_at, session.gpus,
            queue_position=state.queue_position, waiting_for=state.waiting_for,
        )  # fmt: skip

    @staticmethod
    def _submission_entry(submission: Submission, state: QueueState) -> QueueEntry:
        return QueueEntry(
            "submission", submission.id, submission.session_name, submission.owner, submission.dataset,
            submission.status.value, submission.created_at, checkpoint=submission.checkpoint,
            queue_position=state.queue_position, waiting_for=state.waiting_for,
        )  # fmt: skip


def states_update(state: QueueState | None) -> dict[str, Any]:
    """The fields a response model takes from a state (``model_copy(update=...)``); none
    for an item that is not queued."""
    if state is None:
        return {}
    return {"queue_position": state.queue_position, "waiting_for": state.waiting_for}
