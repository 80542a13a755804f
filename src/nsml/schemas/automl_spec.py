"""The search spec of an AutoML study (``sweep.yaml``), checked the same way by the CLI
(before shipping any code) and by the server (which trusts nothing it is sent).

Every mistake is one line that names the key and says what would be right, because a
study that starts from a wrong spec wastes every trial it runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "hyperband")
DIRECTIONS = ("maximize", "minimize")
PARAM_TYPES = ("float", "int", "categorical")
MAX_TRIALS = 10_000
MAX_PARALLEL = 256
MAX_GRID = 100_000
MAX_PARAMS = 64
MAX_CHOICES = 1000
MAX_MAGNITUDE = 2**53  # exact as a float: Optuna keeps every value as one
TOP_KEYS = ("metric", "direction", "trials", "parallel", "sampler", "pruner", "seed", "params")
PRUNER_KEYS = ("type", "startup_trials", "warmup_steps")
PARAM_KEYS = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
Scalar = str | int | float | bool


class SpecError(ValueError):
    """One line: which key is wrong, and how to put it right."""


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Scalar, ...] = ()

    def grid_size(self) -> int:
        """How many values grid search tries, counted without listing them."""
        if self.type == "categorical":
            return len(self.choices)
        assert self.low is not None and self.high is not None
        step = self.step if self.step is not None else 1
        span = (self.high - self.low) / step
        return int(math.floor(span + 1e-9)) + 1 if math.isfinite(span) and span < MAX_GRID else MAX_GRID + 1

    def grid(self) -> list[Scalar]:
        """Every value grid search tries (a float needs a step to have any)."""
        if self.type == "categorical":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        step = self.step if self.step is not None else 1
        count = self.grid_size()
        if self.type == "int":
            return [int(self.low + i * step) for i in range(count)]
        return [round(self.low + i * step, 12) for i in range(count)]

    def flag(self, value: Any) -> list[str]:
        """The trial's arguments for this parameter: ``--lr 0.0031``."""
        return [f"--{self.name}", format(value, ".6g") if isinstance(value, float) else str(value)]


@dataclass(frozen=True)
class StudySpec:
    metric: str
    direction: Literal["maximize", "minimize"]
    trials: int
    parallel: int
    sampler: str
    pruner: str
    params: tuple[Param, ...]
    startup_trials: int = 5
    warmup_steps: int = 0
    seed: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def budget(self) -> int:
        """How many new trials the study runs: grid search stops when its grid is done."""
        if self.sampler != "grid":
            return self.trials
        size = 1
        for param in self.params:
            size = min(size * param.grid_size(), MAX_GRID + 1)
        return min(self.trials, size)

    def arguments(self, values: dict[str, Any]) -> list[str]:
        return [
            part for param in self.params if param.name in values for part in param.flag(values[param.name])
        ]


def parse_spec(raw: Any) -> StudySpec:
    """The checked spec, or :class:`SpecError` naming the first mistake."""
    if not isinstance(raw, dict):
        raise SpecError("the spec must be a mapping of keys (metric, direction, trials, params, ...)")
    _no_unknown(raw, TOP_KEYS, "the spec")
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric.strip() or len(metric) > 200:
        raise SpecError(
            "metric: must be the name of a value the script reports with nsml.report, e.g. valid/loss"
        )
    direction: Literal["maximize", "minimize"] = "minimize"
    if _choice(raw, "direction", DIRECTIONS, "maximize") == "maximize":
        direction = "maximize"
    trials = _int(raw, "trials", 10, 1, MAX_TRIALS)
    parallel = _int(raw, "parallel", 1, 1, MAX_PARALLEL)
    sampler = _choice(raw, "sampler", SAMPLERS, "tpe")
    pruner, startup, warmup = _pruner(raw.get("pruner", "none"))
    seed = raw.get("seed")
    if seed is not None and (type(seed) is not int or not 0 <= seed < 2**32):
        raise SpecError("seed: must be a whole number from 0 to 4294967295")
    params_raw = raw.get("params")
    if not isinstance(params_raw, dict) or not params_raw:
        raise SpecError("params: must map each hyper-parameter name to {type: float|int|categorical, ...}")
    if len(params_raw) > MAX_PARAMS:
        raise SpecError(f"params: at most {MAX_PARAMS} hyper-parameters")
    params = tuple(_param(name, value) for name, value in params_raw.items())
    spec = StudySpec(metric, direction, trials, parallel, sampler, pruner, params, startup, warmup, seed, raw)
    if sampler == "grid":
        for param in params:
            if param.type == "float" and param.step is None:
                raise SpecError(f"params.{param.name}: grid search needs a step for a float parameter")
        size = 1
        for param in params:
            size = min(size * param.grid_size(), MAX_GRID + 1)
            if size > MAX_GRID:
                raise SpecError(f"params: the grid has more than {MAX_GRID} points; use larger steps")
    return spec


def _no_unknown(raw: dict[Any, Any], known: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in known:
            raise SpecError(f"{where}: unknown key {str(key)[:60]!r}; known keys are {', '.join(known)}")


def _choice(raw: dict[str, Any], key: str, options: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in options:
        raise SpecError(f"{key}: must be one of {', '.join(options)}, not {str(value)[:60]!r}")
    return str(value)


def _int(raw: dict[str, Any], key: str, default: int, low: int, high: int, where: str = "") -> int:
    value = raw.get(key, default)
    if type(value) is not int or not low <= value <= high:
        raise SpecError(f"{where}{key}: must be a whole number from {low} to {high}, not {str(value)[:60]!r}")
    return value


def _pruner(raw: Any) -> tuple[str, int, int]:
    if isinstance(raw, dict):
        _no_unknown(raw, PRUNER_KEYS, "pruner")
        kind = _choice(raw, "type", PRUNERS, "median")
        startup = _int(raw, "startup_trials", 5, 0, MAX_TRIALS, "pruner.")
        warmup = _int(raw, "warmup_steps", 0, 0, 2**31 - 1, "pruner.")
        return kind, startup, warmup
    if raw not in PRUNERS:
        raise SpecError(
            f"pruner: must be one of {', '.join(PRUNERS)} (or {{type: median, startup_trials: 2}})"
        )
    return str(raw), 5, 0


def _number(where: str, key: str, value: Any, kind: str) -> float | int:
    if kind == "int" and type(value) is not int:
        raise SpecError(
            f"{where}.{key}: must be a whole number for an int parameter, not {str(value)[:60]!r}"
        )
    if type(value) not in (int, float) or not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise SpecError(f"{where}.{key}: must be a finite number within ±2^53, not {str(value)[:60]!r}")
    return float(value) if kind == "float" else int(value)


def _param(name: Any, raw: Any) -> Param:
    if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
        raise SpecError(
            f"params: {str(name)[:60]!r} is not a usable name; use letters, digits, - and _ "
            "(it becomes the script's --NAME argument)"
        )
    where = f"params.{name}"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be a mapping such as {{type: float, low: 0.001, high: 0.1}}")
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        raise SpecError(f"{where}.type: must be one of {', '.join(PARAM_TYPES)}, not {str(kind)[:60]!r}")
    _no_unknown(raw, PARAM_KEYS[kind], where)
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices or len(choices) > MAX_CHOICES:
            raise SpecError(f"{where}.choices: must be a list of 1 to {MAX_CHOICES} values")
        for choice in choices:
            if not isinstance(choice, (str, int, float, bool)) or (
                isinstance(choice, str) and len(choice) > 200
            ):
                raise SpecError(
                    f"{where}.choices: each choice must be a short string, a number or true/false"
                )
        if len({repr(c) for c in choices}) != len(choices):
            raise SpecError(f"{where}.choices: a choice is listed twice")
        return Param(name, kind, choices=tuple(choices))
    for key in ("low", "high"):
        if key not in raw:
            raise SpecError(f"{where}.{key}: missing; a {kind} parameter needs low and high")
    low = _number(where, "low", raw["low"], kind)
    high = _number(where, "high", raw["high"], kind)
    if low >= high:
        raise SpecError(f"{where}: low ({low}) must be less than high ({high})")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise SpecError(f"{where}.log: must be true or false")
    if log and low <= 0:
        raise SpecError(f"{where}: a log-scale parameter needs low > 0, not {low}")
    step = raw.get("step")
    if step is not None:
        step = _number(where, "step", step, kind)
        if step <= 0:
            raise SpecError(f"{where}.step: must be greater than 0")
        if log:
            raise SpecError(f"{where}: log and step cannot be used together; drop one")
        if step > high - low:
            raise SpecError(f"{where}.step: {step} is larger than high - low")
    return Param(name, kind, low, high, log, step)
