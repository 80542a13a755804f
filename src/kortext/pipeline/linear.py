"""The TF-IDF pipeline: fast, no torch at prediction time, and the usual ensemble anchor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np

from kortext.cong_vectors import CONG_SCALE
from kortext.models.linear import TfidfLinear, TfidfPairClassifier
from kortext.pipeline.base import Pipeline, split_pairs
from kortext.training import ReportFn


class LinearPipeline(Pipeline):
    """TF-IDF + LogisticRegression/Ridge; pairs use :class:`TfidfPairClassifier`. ``--cong`` adds
    CoNG word alignment (pairs) or CoNG sentence vectors (single texts)."""

    estimator: TfidfPairClassifier | TfidfLinear

    def _fit(self, inputs: list[str], labels: np.ndarray, valid: np.ndarray, report: ReportFn | None) -> None:
        train = np.setdiff1d(np.arange(len(inputs)), valid)
        rows = [inputs[i] for i in train]
        if self.pair:
            estimator = TfidfPairClassifier(cong=self.options.cong_features)
            estimator.fit(*split_pairs(rows), labels[train].astype(int))
            self.estimator = estimator
        else:
            cong = CONG_SCALE if self.options.cong_features else 0.0
            self.estimator = TfidfLinear(self.task, cong=cong).fit(rows, labels[train])
            # the validation rows calibrate ratings (valid_score is then measured after it)
            self.estimator.calibrate([inputs[i] for i in valid], labels[valid])
        if report is not None:
            report(0, {"epoch": 0.0})

    def _predict(self, inputs: list[str]) -> np.ndarray:
        if isinstance(self.estimator, TfidfPairClassifier):
            return self.estimator.predict(*split_pairs(inputs))
        return self.estimator.predict(inputs)

    def _save(self, folder: Path) -> dict[str, Any]:
        joblib.dump(self.estimator, folder / "tfidf.joblib")
        return {}

    def _load(self, folder: Path, meta: dict[str, Any]) -> None:
        self.estimator = joblib.load(folder / "tfidf.joblib")
