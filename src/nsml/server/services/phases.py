"""Competition phases, final selections and re-runs, as the 2018 hackathon ran them.

Two preliminary rounds and a final on new data: each phase has its own hidden test set,
limits, dates and board. When a phase starts (the organiser says so, or its
``starts_at`` passes and the next board request or janitor tick notices), each
participant's final selection from the phase before is carried into it and re-scored
on its test set, without their doing anything (``rescoring``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nsml.artifacts import ArtifactStore, BadArchive
from nsml.evaluation import scoring
from nsml.evaluation.metrics import metric_info
from nsml.evaluation.phases import current_phase, due_to_start, has_begun, phase_state
from nsml.evaluation.selection import final_selection
from nsml.names import InvalidName, validate_name
from nsml.server.auth import Principal
from nsml.server.errors import BadRequest, ConflictError, Forbidden, NotFoundError
from nsml.server.services import phase_rules
from nsml.server.services.rescoring import Rescorer
from nsml.server.services.submissions import SubmissionService
from nsml.store import AbstractStore, Conflict, Dataset, Phase, Submission, SubmissionStatus


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class PhaseView:
    phase: Phase
    state: str  # upcoming, running, ended


class PhaseService:
    def __init__(
        self,
        store: AbstractStore,
        artifacts: ArtifactStore,
        submissions: SubmissionService,
        rescorer: Rescorer,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.submissions = submissions
        self.rescorer = rescorer
        self._starting = threading.Lock()  # one phase change at a time: its carry-over runs once
        # each dataset's phases as of its board version: every phase write raises the version
        # (on any server), and a board request asks whether a phase is due to start
        self._known: dict[str, tuple[int, list[Phase]]] = {}

    # phases ----------------------------------------------------------------------------
    def views(self, dataset: Dataset) -> list[PhaseView]:
        self.advance(dataset)
        phases = self.store.list_phases(dataset.name)
        now = _now()
        return [PhaseView(p, phase_state(p, phases, now)) for p in phases]

    def add(
        self, who: Principal, dataset: Dataset, name: str, upload_id: str, options: dict[str, Any]
    ) -> PhaseView:
        """Append a phase with the uploaded test folder; the upload is discarded however this ends."""
        try:
            self._check_organiser(who, dataset)
            try:
                validate_name("phase", name)
            except InvalidName as exc:
                raise BadRequest(str(exc)) from None
            starts, ends = options.get("starts_at"), options.get("ends_at")
            if starts is not None and ends is not None and ends <= starts:
                raise BadRequest("the phase must end after it starts: give --ends later than --starts")
            if any(p.name == name for p in self.store.list_phases(dataset.name)):
                raise ConflictError(f"{dataset.name} already has a phase {name}; pick another name")
            with self.artifacts.staged_dataset() as staging:
                self.artifacts.unpack_upload(upload_id, staging)
                test_size = self._check_test_folder(staging)
                try:
                    self.artifacts.keep_phase_test(staging, dataset.name, name)
                except FileExistsError:
                    raise ConflictError(
                        f"{dataset.name} already has a phase {name}; pick another name"
                    ) from None
            try:
                phase = self.store.create_phase(dataset.id, name, test_size, _now(), **options)
            except Conflict:
                raise ConflictError(f"{dataset.name} already has a phase {name}; pick another name") from None
        except BadArchive as exc:
            raise BadRequest(str(exc)) from None
        finally:
            self.artifacts.discard_upload(upload_id)
        return next(v for v in self.views(dataset) if v.phase.id == phase.id)

    def _check_test_folder(self, folder: Path) -> int:
        """The number of test examples; refuses a folder a submission could not be scored on."""
        data, labels = folder / "test" / "test_data", folder / "test" / "test_label"
        if not data.is_file() or not labels.is_file():
            raise BadRequest("a phase's test folder needs test_data and test_label")
        inputs = scoring.read_test_inputs(folder)
        try:
            count = len(scoring.read_labels(folder, "test"))
        except ValueError as exc:
            raise BadRequest(f"test_label: {exc}") from None
        if not inputs or len(inputs) != count:
            raise BadRequest(
                f"test_data has {len(inputs)} lines but test_label has {count}; "
                "they must match and not be empty"
            )
        return count

    def start(self, who: Principal, dataset: Dataset, name: str) -> PhaseView:
        """Make ``name`` the current phase now, carrying each participant's final selection
        of the phase before into it."""
        self._check_organiser(who, dataset)
        with self._starting:
            phases = self.store.list_phases(dataset.name)
            phase = next((p for p in phases if p.name == name), None)
            if phase is None:
                raise NotFoundError(
                    f"{dataset.name} has no phase {name!r}; `nsml phase ls {dataset.name}` lists them"
                )
            current = current_phase(phases, _now())
            started = current is not None and current.started_at is not None
            if current is not None and (
                phase.index < current.index or (phase.index == current.index and started)
            ):
                raise ConflictError(f"phase {name} of {dataset.name} has already started; start a later one")
            self._begin(dataset, phase, phases)
        return next(v for v in self.views(dataset) if v.phase.id == phase.id)

    def advance(self, dataset: Dataset) -> None:
        """Start the phase whose ``starts_at`` passed (the janitor and board requests call this)."""
        known = self._known.get(dataset.name)
        if known is not None and known[0] == dataset.board_version and due_to_start(known[1], _now()) is None:
            return  # nothing due: no need to read the phases again, nor to wait for the lock
        with self._starting:
            phases = self.store.list_phases(dataset.name)
            self._known[dataset.name] = (dataset.board_version, phases)
            due = due_to_start(phases, _now())
            if due is not None:
                self._begin(dataset, due, phases)

    def advance_all(self) -> None:
        for dataset in self.store.list_datasets():
            self.advance(dataset)

    def _begin(self, dataset: Dataset, phase: Phase, phases: list[Phase]) -> None:
        now = _now()
        earlier = [p for p in phases if p.index < phase.index and (has_begun(p, now) or p.index == 0)]
        self.store.mark_phase_started(phase.id, now)
        if not earlier:
            return
        previous = earlier[-1]
        submissions = [s for s in self.store.list_submissions(dataset.name) if s.phase_id == previous.id]
        higher_is_better = metric_info(dataset.metric).higher_is_better
        for submission_id in sorted(final_selection(submissions, dataset.max_selected, higher_is_better)):
            carried = self.store.carry_submission(
                submission_id, phase.id, phase.test_size, now, self.submissions.driver
            )
            self.rescorer.queue(carried, dataset, f"carried from phase {previous.name} into {phase.name}")

    # final selection ---------------------------------------------------------------------
    def select(self, who: Principal, dataset: Dataset, ids: list[int]) -> list[Submission]:
        """Make ``ids`` the caller's whole final selection in the current phase."""
        if dataset.closed:
            raise ConflictError(f"the competition on {dataset.name} is closed; the final selection is frozen")
        chosen = list(dict.fromkeys(ids))
        if len(chosen) > dataset.max_selected:
            raise BadRequest(
                f"at most {dataset.max_selected} submissions may be selected on {dataset.name}; "
                f"you gave {len(chosen)}"
            )
        owner = self.store.get_user(who.user.owner_name)
        phase = phase_rules.current(self.store, dataset, _now())
        mine = {s.id: s for s in self.store.list_submissions(dataset.name, owner=owner.name)}
        for submission_id in chosen:
            submission = mine.get(submission_id)
            if submission is None:
                raise NotFoundError(
                    f"submission {submission_id} is not one of yours on {dataset.name}; "
                    f"`nsml board {dataset.name} --private` lists yours"
                )
            if phase is not None and submission.phase_id != phase.id:
                raise ConflictError(
                    f"submission {submission_id} belongs to phase {submission.phase or '(none)'}, "
                    f"not the current phase {phase.name}"
                )
            if submission.status is not SubmissionStatus.SCORED:
                raise BadRequest(
                    f"submission {submission_id} is {submission.status.value}; "
                    "only scored ones can be selected"
                )
        self.store.select_submissions(dataset.id, owner.id, phase.id if phase else None, chosen)
        current = self.store.list_submissions(dataset.name, owner=owner.name)
        in_phase = [s for s in current if s.phase_id == (phase.id if phase else None)]
        phases = self.store.list_phases(dataset.name)
        return [self.submissions.participant_view(dataset, s, phases) for s in reversed(in_phase)]

    # re-runs ---------------------------------------------------------------------------
    def rerun(self, who: Principal, dataset: Dataset, ids: list[int], everything: bool) -> list[int]:
        """Re-score submissions (all scored ones with ``everything``); their owners' limits
        are untouched. The ids whose re-scoring was queued."""
        self._check_organiser(who, dataset)
        if everything == bool(ids):
            raise BadRequest("give submission ids or --all, not both and not neither")
        submissions = {s.id: s for s in self.store.list_submissions(dataset.name)}
        if everything:
            chosen = [s for s in submissions.values() if s.status is SubmissionStatus.SCORED]
        else:
            chosen = []
            for submission_id in dict.fromkeys(ids):
                submission = submissions.get(submission_id)
                if submission is None:
                    raise NotFoundError(f"submission {submission_id} is not on {dataset.name}")
                if submission.status not in (SubmissionStatus.SCORED, SubmissionStatus.FAILED):
                    raise ConflictError(
                        f"submission {submission_id} is {submission.status.value}; "
                        "only scored or failed ones can be re-run"
                    )
                if self.rescorer.busy(submission_id):
                    raise ConflictError(f"submission {submission_id} is already being re-scored")
                chosen.append(submission)
        reason = f"re-run by {who.user.name}"
        return [s.id for s in chosen if self.rescorer.queue(s, dataset, reason)]

    def _check_organiser(self, who: Principal, dataset: Dataset) -> None:
        if not who.can_organise(dataset):
            raise Forbidden(f"only the organiser of {dataset.name} ({dataset.owner}) or an admin may do this")
