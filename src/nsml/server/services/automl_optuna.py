"""What the AutoML service asks of Optuna: its storage, samplers, pruners, and the
study and trial summaries the API answers with.

Optuna keeps its studies in a SQLite file of their own in NSML_HOME (``automl.db``), not
in the platform's database: Optuna migrates its tables with its own Alembic history,
which must not meet the platform's. A study's platform facts (owner, dataset, entry,
arguments, spec, state) live in the study's user attributes, a trial's session in the
trial's, so one file holds everything a restarted server needs to carry on.
"""

from __future__ import annotations

import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from nsml.schemas.automl import StudyOut, TrialOut
from nsml.schemas.automl_spec import StudySpec, parse_spec

STATE_NAMES = {
    TrialState.WAITING: "waiting",
    TrialState.RUNNING: "running",
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
}

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
logging.getLogger("optuna").propagate = False


def open_storage(path: Path) -> optuna.storages.RDBStorage:
    """One SQLite file; waits for a writer instead of failing (requests and the driver share it)."""
    return optuna.storages.RDBStorage(
        f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 30, "check_same_thread": False}}
    )


def sampler_for(spec: StudySpec, already: int) -> optuna.samplers.BaseSampler:
    """A seeded sampler continues where it stopped after a restart: the seed moves on
    with the trials already asked, so it does not propose the same values again."""
    seed = None if spec.seed is None else spec.seed + already
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        space = {param.name: param.grid() for param in spec.params}
        return optuna.samplers.GridSampler(space, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(1, spec.budget // 4)))


def pruner_for(spec: StudySpec) -> optuna.pruners.BasePruner:
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.startup_trials, n_warmup_steps=spec.warmup_steps
        )
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, spec.warmup_steps))
    return optuna.pruners.NopPruner()


def distributions(spec: StudySpec) -> dict[str, BaseDistribution]:
    found: dict[str, BaseDistribution] = {}
    for param in spec.params:
        if param.type == "categorical":
            found[param.name] = CategoricalDistribution(list(param.choices))
        elif param.type == "int":
            assert param.low is not None and param.high is not None
            step = int(param.step) if param.step is not None else 1
            found[param.name] = IntDistribution(int(param.low), int(param.high), log=param.log, step=step)
        else:
            assert param.low is not None and param.high is not None
            found[param.name] = FloatDistribution(
                float(param.low), float(param.high), log=param.log, step=param.step
            )
    return found


def spec_of(attrs: dict[str, Any]) -> StudySpec:
    return parse_spec(attrs["spec"])


def trial_out(trial: FrozenTrial) -> TrialOut:
    attrs = trial.user_attrs
    steps = trial.intermediate_values
    last_step = max(steps) if steps else None
    value = trial.value if trial.values else (steps[last_step] if last_step is not None else None)
    return TrialOut(
        number=trial.number,
        state=STATE_NAMES.get(trial.state, trial.state.name.lower()),
        session=attrs.get("session"),
        params=dict(trial.params),
        value=value,
        step=last_step,
        reason=attrs.get("reason"),
        resumed_from=attrs.get("resumed_from"),
    )


def study_out(name: str, attrs: dict[str, Any], trials: list[FrozenTrial]) -> StudyOut:
    spec = spec_of(attrs)
    counts: dict[str, int] = {}
    for trial in trials:
        state = STATE_NAMES.get(trial.state, "failed")
        counts[state] = counts.get(state, 0) + 1
    done = [t for t in trials if t.state is TrialState.COMPLETE and t.value is not None]
    best = None
    if done:
        pick = max if spec.direction == "maximize" else min
        best = pick(done, key=lambda t: float(t.value))  # type: ignore[arg-type]
    return StudyOut(
        name=name,
        owner=attrs["owner"],
        dataset=attrs["dataset"],
        metric=spec.metric,
        direction=spec.direction,
        sampler=spec.sampler,
        pruner=spec.pruner,
        budget=spec.budget,
        parallel=spec.parallel,
        resume_pruned=bool(attrs.get("resume_pruned")),
        state=attrs.get("state", "running"),
        reason=attrs.get("reason"),
        created_at=datetime.fromisoformat(attrs["created_at"]),
        counts=counts,
        best_trial=best.number if best else None,
        best_value=best.value if best else None,
        best_params=dict(best.params) if best else None,
        best_session=best.user_attrs.get("session") if best else None,
    )


def importances(study: optuna.Study) -> dict[str, float]:
    """fANOVA's share of the value each parameter explains; empty with fewer than two
    completed trials or a single parameter that never varied."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(done) < 2:
        return {}
    try:
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
    return {name: float(value) for name, value in found.items()}


def now_text() -> str:
    return datetime.now(timezone.utc).isoformat()
