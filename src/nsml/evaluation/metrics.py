"""The metrics a dataset can declare, which way is better, and how predictions are checked.

A metric is a name, a direction, a task and a scoring function; new metrics register
in ``METRICS``. Labels and predictions arrive as the strings of ``test_label`` and the
values a participant's ``infer`` returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class InvalidPredictions(ValueError):
    """Predictions that cannot be scored; the message names the first problem."""


def _accuracy(labels: Sequence[float], predictions: Sequence[float]) -> float:
    return sum(1 for y, p in zip(labels, predictions, strict=True) if y == p) / len(labels)


def _f1(labels: Sequence[float], predictions: Sequence[float]) -> float:
    """Binary F1 of the positive class 1 (macro F1 when there are more classes)."""
    classes = sorted(set(labels) | set(predictions))
    positives = [1.0] if set(classes) <= {0.0, 1.0} else classes
    scores = []
    for positive in positives:
        tp = sum(1 for y, p in zip(labels, predictions, strict=True) if y == positive and p == positive)
        fp = sum(1 for y, p in zip(labels, predictions, strict=True) if y != positive and p == positive)
        fn = sum(1 for y, p in zip(labels, predictions, strict=True) if y == positive and p != positive)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    return sum(scores) / len(scores)


def _mse(labels: Sequence[float], predictions: Sequence[float]) -> float:
    return sum((y - p) ** 2 for y, p in zip(labels, predictions, strict=True)) / len(labels)


def _rmse(labels: Sequence[float], predictions: Sequence[float]) -> float:
    return math.sqrt(_mse(labels, predictions))


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    task: str  # "classification" or "regression"
    score: Callable[[Sequence[float], Sequence[float]], float]


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("accuracy", True, "classification", _accuracy),
    "f1": MetricInfo("f1", True, "classification", _f1),
    "mse": MetricInfo("mse", False, "regression", _mse),
    "rmse": MetricInfo("rmse", False, "regression", _rmse),
}


def metric_info(name: str) -> MetricInfo:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose one of: {', '.join(sorted(METRICS))}") from None


def parse_labels(lines: Sequence[str]) -> list[float]:
    return [float(line.strip()) for line in lines]


def check_predictions(
    metric: MetricInfo,
    predictions: Any,
    expected: int,
    classes: Sequence[float],
    first_index: int = 0,
    quote: bool = True,
) -> list[float]:
    """Turn ``[(probability, prediction), ...]`` (or bare predictions) into numbers, or say
    what is wrong first.

    Classification predictions must be one of the dataset's classes; regression
    predictions must lie within the range of the labels seen in training. With ``quote``
    false the message does not repeat the offending value: predictions made from hidden
    test inputs could smuggle them out through it.
    """
    if not isinstance(predictions, list):
        raise InvalidPredictions(f"infer returned a {type(predictions).__name__}, expected a list")
    if len(predictions) != expected:
        raise InvalidPredictions(f"infer returned {len(predictions)} predictions for {expected} inputs")
    low, high = (min(classes), max(classes)) if classes else (-math.inf, math.inf)
    allowed_classes = set(classes)
    values: list[float] = []
    for offset, item in enumerate(predictions):
        if type(item) is list and len(item) == 2 and type(item[1]) in (int, float):
            number = float(item[1])  # the common case, checked without building messages
            if math.isfinite(number) and (
                number in allowed_classes if metric.task == "classification" else low <= number <= high
            ):
                values.append(number)
                continue
        where = f"prediction {first_index + offset + 1}"
        if isinstance(item, list) and len(item) == 2:
            value = item[1]
        elif type(item) in (int, float):
            value = item  # a bare prediction, as some 2018 scripts returned
        else:
            raise InvalidPredictions(
                f"{where} is {item!r:.60}; expected a prediction or a (probability, prediction) pair"
                if quote
                else f"{where} is neither a prediction nor a (probability, prediction) pair"
            )
        shown = f"{where} is {value!r:.60}," if quote else f"{where} is"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidPredictions(f"{shown} not a number")
        number = float(value)
        if not math.isfinite(number):
            raise InvalidPredictions(f"{shown} not a finite number")
        if metric.task == "classification" and number not in classes:
            allowed = ", ".join(f"{c:g}" for c in classes)
            raise InvalidPredictions(f"{shown} not one of the classes {allowed}")
        if metric.task == "regression" and not low <= number <= high:
            raise InvalidPredictions(
                f"{shown} outside the label range {low:g}..{high:g}; clip predictions to it"
            )
        values.append(number)
    return values
