"""Ensembles: average several trained models, or stack them with a small meta-model.

Averaging checkpoints of different kinds (a TF-IDF model and a neural one) cancels some of
each one's errors; stacking learns the weights, but only from predictions on rows the
members did not train on (out-of-fold), otherwise it trusts the most overfitted member.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

Predictor = Callable[[Sequence[Any]], np.ndarray]


def average(predictions: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of the members' probabilities (or values); weights need not sum to 1."""
    if not predictions:
        raise ValueError("average: no member predictions to combine")
    stacked = np.vstack([np.asarray(p, dtype=np.float64) for p in predictions])
    w = np.ones(len(predictions)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(predictions):
        raise ValueError(f"average: {len(w)} weights for {len(predictions)} members")
    return (w[:, None] * stacked).sum(0) / w.sum()


class AveragingEnsemble:
    """Members are callables from inputs to probabilities/values (e.g. loaded checkpoints)."""

    def __init__(self, members: Sequence[Predictor], weights: Sequence[float] | None = None) -> None:
        self.members = list(members)
        self.weights = list(weights) if weights is not None else None

    def predict(self, inputs: Sequence[Any]) -> np.ndarray:
        return average([member(inputs) for member in self.members], self.weights)


class Stacker:
    """A meta-model over members' out-of-fold predictions (logit space for probabilities)."""

    def __init__(self, task: str = "binary") -> None:
        self.task = task
        self.model: LogisticRegression | Ridge = LogisticRegression(C=1.0) if task == "binary" else Ridge(1.0)

    def _features(self, predictions: Sequence[np.ndarray]) -> np.ndarray:
        x = np.column_stack([np.asarray(p, dtype=np.float64) for p in predictions])
        if self.task == "binary":
            x = np.clip(x, 1e-5, 1 - 1e-5)
            x = np.log(x / (1 - x))
        return x

    def fit(self, predictions: Sequence[np.ndarray], labels: Sequence[float]) -> Stacker:
        self.model.fit(self._features(predictions), np.asarray(labels))
        return self

    def predict(self, predictions: Sequence[np.ndarray]) -> np.ndarray:
        x = self._features(predictions)
        if isinstance(self.model, LogisticRegression):
            return self.model.predict_proba(x)[:, 1]
        return self.model.predict(x)
