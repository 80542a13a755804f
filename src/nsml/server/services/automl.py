"""AutoML studies (NSML's CHOPT): hyper-parameter search whose trials are sessions.

Optuna proposes the values and decides what to prune; the platform runs each trial as an
ordinary session (``ps``, logs, checkpoints, ``fork``, ``submit`` all apply) with the
values as ``--NAME VALUE`` arguments, feeds the pruner each report of the study's metric
as it arrives, and stops a pruned trial with the step it was pruned at as its reason.
``tick`` does one round of that for every running study; the driver calls it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsml.schemas.automl import StudyCreate, StudyDetail, StudyOut
from nsml.schemas.automl_spec import SpecError, StudySpec, parse_spec
from nsml.server.errors import ApiError, BadRequest, ConflictError, NotFoundError
from nsml.server.services.server_leases import lost_with_its_server
from nsml.server.services.sessions import SHUTDOWN_REASON, SessionService
from nsml.store import AbstractStore, NotFound, Session, SessionStatus, User

if TYPE_CHECKING:  # Optuna is imported when a study is first used: servers without any start faster
    import optuna
    from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger("nsml.automl")
STOPPED_REASON = "the study was stopped"


class AutoMLService:
    def __init__(self, store: AbstractStore, sessions: SessionService, path: Path) -> None:
        self.store = store
        self.sessions = sessions
        self.path = path
        self._storage: optuna.storages.RDBStorage | None = None
        self._studies: dict[str, optuna.Study] = {}  # loaded once: a sampler keeps its state
        self._lock = threading.RLock()
        self.on_created: Callable[[], None] = lambda: None  # wakes the driver; set by the app

    def _open(self) -> optuna.storages.RDBStorage:
        """Opened on first use, so a server without studies never pays for Optuna's tables."""
        from nsml.server.services import automl_optuna as opt

        if self._storage is None:
            self._storage = opt.open_storage(self.path)
        return self._storage

    @property
    def has_studies(self) -> bool:
        return self._storage is not None or self.path.exists()

    # creation ----------------------------------------------------------------------
    def create(self, owner: User, body: StudyCreate) -> StudyDetail:
        """The study and its first trial, at once: a wrong dataset, entry or source fails
        here, in the request, rather than in a driver nobody watches."""
        import optuna

        from nsml.server.services import automl_optuna as opt

        try:
            spec = parse_spec(body.spec)
        except SpecError as exc:
            raise BadRequest(f"invalid spec: {exc}") from None
        with self._lock:
            storage = self._open()
            taken = {s.study_name for s in storage.get_all_studies()}
            number = len(taken) + 1
            while f"{owner.name}-automl-{number}" in taken:
                number += 1
            name = f"{owner.name}-automl-{number}"
            study = optuna.create_study(
                storage=storage,
                study_name=name,
                direction=spec.direction,
                sampler=opt.sampler_for(spec, 0),
                pruner=opt.pruner_for(spec),
            )
            attrs = {
                "owner": owner.name,
                "dataset": body.dataset,
                "entry": body.entry,
                "args": list(body.args),
                "description": body.description,
                "gpus": body.gpus,
                "cpus": body.cpus,
                "memory": body.memory,
                "shm_size": body.shm_size,
                "spec": body.spec,
                "resume_pruned": body.resume_pruned,
                "state": "running",
                "created_at": opt.now_text(),
            }
            for key, value in attrs.items():
                study.set_user_attr(key, value)
            try:
                first = self._launch(study, spec, attrs, owner, code_upload=body.code_upload)
            except ApiError:
                optuna.delete_study(study_name=name, storage=storage)
                raise
            study.set_user_attr("source_session_id", first.id)
            self._studies[name] = study
            self.on_created()
            return self._detail(study)

    def _launch(
        self,
        study: optuna.Study,
        spec: StudySpec,
        attrs: dict[str, Any],
        owner: User,
        code_upload: str | None = None,
        rerun: FrozenTrial | None = None,
    ) -> Session:
        """Ask Optuna for the next values (or run an interrupted trial's again) and start
        the session that tries them."""
        import optuna
        from optuna.trial import TrialState

        from nsml.server.services import automl_optuna as opt

        if rerun is None:
            trial = study.ask(opt.distributions(spec))
        else:  # not through the sampler: grid search counts the interrupted point as done
            template = optuna.trial.create_trial(
                state=TrialState.RUNNING,
                params=dict(rerun.params),
                distributions=dict(rerun.distributions),
                user_attrs={"rerun_of": rerun.number},
            )
            trial = optuna.trial.Trial(study, study._storage.create_new_trial(study._study_id, template))
        args = [*attrs["args"], *spec.arguments(trial.params)]
        description = attrs["description"] or f"{study.study_name} trial {trial.number}"
        source = None if code_upload is not None else self._source(attrs)
        try:
            session = self.sessions.create(
                owner, attrs["dataset"], attrs["entry"], args, description, attrs["gpus"],
                code_upload=code_upload, cpus=attrs["cpus"], memory=attrs["memory"],
                shm_size=attrs["shm_size"], source_of=source,
            )  # fmt: skip
        except ApiError as exc:
            study.tell(trial, state=TrialState.FAIL)
            study._storage.set_trial_user_attr(trial._trial_id, "reason", exc.detail)
            raise
        trial.set_user_attr("session_id", session.id)
        trial.set_user_attr("session", session.name)
        return session

    def _source(self, attrs: dict[str, Any]) -> Session:
        try:
            return self.store.get_session_by_id(int(attrs["source_session_id"]))
        except (NotFound, KeyError):
            raise ConflictError(
                "the study's first trial, whose source every trial runs, was removed"
            ) from None

    # queries -----------------------------------------------------------------------
    def visible(self, namespaces: Sequence[str]) -> list[StudyOut]:
        from nsml.server.services import automl_optuna as opt

        if not self.has_studies:
            return []
        with self._lock:
            found = []
            for frozen in self._open().get_all_studies():
                if frozen.user_attrs.get("owner") in namespaces:
                    study = self._load(frozen.study_name)
                    found.append(opt.study_out(frozen.study_name, frozen.user_attrs, study.get_trials()))
            return sorted(found, key=lambda s: s.created_at, reverse=True)

    def get(self, name: str, namespaces: Sequence[str]) -> optuna.Study:
        """The study, if the caller's own (or their team's); others' studies do not exist."""
        missing = NotFoundError(f"study {name[:80]!r} not found; `nsml automl ls` lists your studies")
        if not self.has_studies or len(name) > 200:
            raise missing
        with self._lock:
            try:
                study = self._load(name)
            except KeyError:
                raise missing from None
            if study.user_attrs.get("owner") not in namespaces:
                raise missing
            return study

    def detail(self, study: optuna.Study) -> StudyDetail:
        with self._lock:
            return self._detail(study)

    def _detail(self, study: optuna.Study) -> StudyDetail:
        from nsml.server.services import automl_optuna as opt

        attrs = study.user_attrs
        summary = opt.study_out(study.study_name, attrs, study.get_trials())
        trials = [opt.trial_out(t) for t in study.get_trials()]
        return StudyDetail(**summary.model_dump(), trials=trials, spec=attrs["spec"])

    def importances(self, study: optuna.Study) -> dict[str, float]:
        from nsml.server.services import automl_optuna as opt

        with self._lock:
            return opt.importances(study)

    def _load(self, name: str) -> optuna.Study:
        import optuna

        from nsml.server.services import automl_optuna as opt

        if name not in self._studies:
            storage = self._open()
            attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(name))
            spec = opt.spec_of(attrs)
            already = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
            self._studies[name] = optuna.load_study(
                study_name=name,
                storage=storage,
                sampler=opt.sampler_for(spec, already),
                pruner=opt.pruner_for(spec),
            )
        return self._studies[name]

    # control -----------------------------------------------------------------------
    def stop(self, study: optuna.Study) -> StudyDetail:
        """Stop every trial still running; finished trials and their sessions stay."""
        from optuna.trial import TrialState

        with self._lock:
            if study.user_attrs.get("state") != "running":
                raise ConflictError(
                    f"study {study.study_name} is not running (it is {study.user_attrs.get('state')})"
                )
            study.set_user_attr("state", "stopped")
            study.set_user_attr("reason", "stopped by its owner")
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
                self._end_trial(study, trial, TrialState.FAIL, STOPPED_REASON)
                session_id = trial.user_attrs.get("session_id")
                if session_id is not None:
                    self._stop_session(int(session_id), STOPPED_REASON)
            return self._detail(study)

    def _stop_session(self, session_id: int, reason: str) -> None:
        try:
            session = self.store.get_session_by_id(session_id)
        except NotFound:
            return
        if session.status is SessionStatus.QUEUED:
            self.sessions.stop(session)
        elif not session.status.is_terminal:
            self.sessions.stop_for(session_id, reason)

    def _end_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, reason: str | None
    ) -> None:
        from optuna.trial import TrialState

        if reason:
            study._storage.set_trial_user_attr(trial._trial_id, "reason", reason)
        if trial.state is TrialState.WAITING:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.RUNNING)
        study.tell(trial.number, state=state)

    # the driver's round ------------------------------------------------------------
    def running_studies(self) -> list[str]:
        if not self.has_studies:
            return []
        with self._lock:
            return [
                s.study_name for s in self._open().get_all_studies() if s.user_attrs.get("state") == "running"
            ]

    def tick(self, name: str) -> None:
        """Feed new reports to the pruner, settle ended trials, start trials where there is room."""
        from optuna.trial import TrialState

        from nsml.server.services import automl_optuna as opt

        with self._lock:
            study = self._load(name)
            attrs = study.user_attrs
            if attrs.get("state") != "running":
                return
            spec = opt.spec_of(attrs)
            for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                self._follow(study, spec, trial)
            self._fill(study, spec, attrs)

    def _follow(self, study: optuna.Study, spec: StudySpec, trial: FrozenTrial) -> None:
        import optuna
        from optuna.trial import TrialState

        session_id = trial.user_attrs.get("session_id")
        if session_id is None:  # asked, but its session was never made (a crash between)
            self._end_trial(study, trial, TrialState.FAIL, "its session was never started")
            return
        try:
            session = self.store.get_session_by_id(int(session_id))
        except NotFound:
            self._end_trial(study, trial, TrialState.FAIL, "its session was removed")
            return
        points = [
            p for p in self.store.list_metrics(session.id) if p.key == spec.metric and p.value is not None
        ]
        live = optuna.trial.Trial(study, trial._trial_id)
        reported = trial.intermediate_values
        for point in sorted(points, key=lambda p: p.step):
            if point.step not in reported:
                live.report(float(point.value), point.step)  # type: ignore[arg-type]
                reported = {**reported, point.step: float(point.value)}  # type: ignore[arg-type]
        last = max(reported) if reported else None
        prunable = spec.pruner != "none" and "resumed_from" not in trial.user_attrs
        if not session.status.is_terminal:
            if prunable and last is not None and live.should_prune():
                reason = f"pruned at step {last}"
                self._end_trial(study, trial, TrialState.PRUNED, reason)
                self.sessions.stop_for(session.id, reason)
            return
        if session.status is SessionStatus.EXITED and last is not None:
            study.tell(trial.number, reported[last])
        elif session.status is SessionStatus.FAILED and (
            session.reason == SHUTDOWN_REASON or lost_with_its_server(session.reason)
        ):
            study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)  # before it ends
            self._end_trial(study, trial, TrialState.FAIL, "interrupted by a server restart; run again")
        else:
            why = session.reason or (
                f"it never reported {spec.metric}" if last is None else f"its session {session.status.value}"
            )
            self._end_trial(study, trial, TrialState.FAIL, why)

    def _fill(self, study: optuna.Study, spec: StudySpec, attrs: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        active = sum(1 for t in trials if t.state is TrialState.RUNNING)
        rerun = {t.user_attrs.get("rerun_of") for t in trials}
        reruns = [
            t for t in trials
            if t.user_attrs.get("interrupted") and "resumed_from" not in t.user_attrs
            and t.number not in rerun
        ]  # fmt: skip
        # an interrupted trial is not counted: the trial that runs its values again is
        used = sum(
            1 for t in trials if not t.user_attrs.get("interrupted") and "resumed_from" not in t.user_attrs
        )
        owner = self.store.get_user(attrs["owner"])
        pending = False  # a pruned trial that may be resumed once its session has ended
        while active < spec.parallel:
            try:
                if reruns or used < spec.budget:
                    self._launch(study, spec, attrs, owner, rerun=reruns.pop(0) if reruns else None)
                    used += 1
                elif not attrs.get("resume_pruned"):
                    break
                else:
                    outcome = self._resume_one(study, spec)
                    if outcome != "started":
                        pending = pending or outcome == "wait"
                        break
            except ApiError as exc:
                study.set_user_attr("state", "failed")
                study.set_user_attr("reason", f"a trial could not start: {exc.detail}")
                return
            active += 1
        if active == 0 and not pending:
            study.set_user_attr("state", "finished")

    def _resume_one(self, study: optuna.Study, spec: StudySpec) -> str:
        """Resume the most promising pruned trial from its session's latest checkpoint
        (CHOPT): "started", "wait" (its session is still stopping) or "none" left."""
        import optuna
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        resumed = {t.user_attrs.get("resumed_from") for t in trials}
        candidates = [
            t for t in trials
            if t.state is TrialState.PRUNED and t.number not in resumed
            and not t.user_attrs.get("unresumable")
        ]  # fmt: skip
        if not candidates:
            return "none"
        sign = -1.0 if spec.direction == "maximize" else 1.0
        best = min(candidates, key=lambda t: sign * t.value if t.value is not None else float("inf"))
        try:
            session = self.store.get_session_by_id(int(best.user_attrs["session_id"]))
            if not session.status.is_terminal:
                return "wait"
            resumed_session = self.sessions.resume(session)
        except (NotFound, KeyError, BadRequest, ConflictError) as exc:
            detail = getattr(exc, "detail", "its session was removed")
            study._storage.set_trial_user_attr(best._trial_id, "unresumable", detail)
            return "wait"  # the next round picks another
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING,
            params=dict(best.params),
            distributions=dict(best.distributions),
            user_attrs={
                "session_id": resumed_session.id,
                "session": resumed_session.name,
                "resumed_from": best.number,
            },
            intermediate_values=dict(best.intermediate_values),
        )
        study._storage.create_new_trial(study._study_id, template_trial=template)
        return "started"
