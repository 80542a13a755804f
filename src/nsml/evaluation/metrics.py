"""The metrics a dataset can declare, and which way is better.

New metrics register here; the dataset registry accepts exactly these names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    task: str  # "classification" or "regression"


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("accuracy", True, "classification"),
    "f1": MetricInfo("f1", True, "classification"),
    "mse": MetricInfo("mse", False, "regression"),
    "rmse": MetricInfo("rmse", False, "regression"),
}


def metric_info(name: str) -> MetricInfo:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose one of: {', '.join(sorted(METRICS))}") from None
