"""Ensembles: members trained together on one split (stacked), or checkpoints of earlier
sessions averaged (``--ensemble-of``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from kortext.models.ensemble import Stacker, average
from kortext.pipeline.base import Options, Pipeline, Task, check_model, make_pipeline
from kortext.training import ReportFn


def parse_checkpoints(text: str) -> list[tuple[str, str]]:
    """``"kin/3:best, kin/5:best"`` -> [("kin/3", "best"), ("kin/5", "best")]; names may hold ':'."""
    refs = []
    for item in (part.strip() for part in text.split(",")):
        session, _, checkpoint = item.partition(":")
        if not item or not session or not checkpoint:
            raise ValueError(f"{item!r} is not SESSION:CHECKPOINT (e.g. kin/3:best); see nsml model ls")
        refs.append((session, checkpoint))
    return refs


def average_checkpoints(refs: str, restore: Callable[[str, str], Pipeline]) -> EnsemblePipeline:
    """The average of ``"SESSION:CHECKPOINT,..."``; ``restore(session, checkpoint)`` brings one back
    (on the platform through ``nsml.load(checkpoint=..., session=...)``)."""
    return EnsemblePipeline.of(
        [restore(session, checkpoint) for session, checkpoint in parse_checkpoints(refs)]
    )


class EnsemblePipeline(Pipeline):
    """Several members trained on the same split; averaged, or stacked on the validation rows.

    The members never train on the validation rows, so their predictions there are honest
    inputs for the stacker; the reported validation score of the stack is cross-validated.
    """

    def __init__(self, model: str, task: Task, pair: bool, options: Options) -> None:
        super().__init__(model, task, pair, options)
        names = [m.strip() for m in options.members.split(",") if m.strip()]
        for name in names:
            if name in ("ensemble",):
                raise ValueError("an ensemble cannot contain another ensemble")
            check_model(name, pair)
        if not names:
            raise ValueError("ensemble: give at least one member, e.g. --members tfidf,esim")
        self.members = [make_pipeline(name, task, pair, options) for name in names]
        self.stacker: Stacker | None = None

    @classmethod
    def of(cls, members: Sequence[Pipeline]) -> EnsemblePipeline:
        """An average of pipelines already trained, e.g. checkpoints of several sessions.

        No stacking: each member may have trained on rows that would judge the weights."""
        if not members:
            raise ValueError("an ensemble of checkpoints needs at least one checkpoint")
        first = members[0]
        for member in members:
            if (member.task, member.pair) != (first.task, first.pair):
                raise ValueError(
                    f"cannot average a {member.task} {member.model_name} with a {first.task} "
                    f"{first.model_name}: the checkpoints come from different tasks"
                )
            if isinstance(member, EnsemblePipeline):
                raise ValueError("an ensemble cannot contain another ensemble")
        names = ",".join(m.model_name for m in members)
        ensemble = cls("ensemble", first.task, first.pair, replace(first.options, members=names, stack=False))
        ensemble.members = list(members)
        ensemble.label_range = (
            min(m.label_range[0] for m in members),
            max(m.label_range[1] for m in members),
        )
        return ensemble

    def describe(self) -> str:
        return f"{len(self.members)} checkpoints ({', '.join(m.model_name for m in self.members)})"

    def _fit(self, inputs: list[str], labels: np.ndarray, valid: np.ndarray, report: ReportFn | None) -> None:
        predictions = []
        for number, member in enumerate(self.members):
            member._fit(inputs, labels, valid, report)
            predictions.append(member._predict([inputs[i] for i in valid]))
            if report is not None:
                report(number, {f"member_{member.model_name}": member.score(predictions[-1], labels[valid])})
        if self.options.stack and len(self.members) > 1 and len(valid) >= 20:
            self.stacker = Stacker(self.task).fit(predictions, labels[valid])

    def member_predictions(self, inputs: list[str]) -> list[np.ndarray]:
        return [member._predict(inputs) for member in self.members]

    def _predict(self, inputs: list[str]) -> np.ndarray:
        predictions = self.member_predictions(inputs)
        if self.stacker is not None:
            return self.stacker.predict(predictions)
        return average(predictions)

    def fit(
        self, inputs: Sequence[str], labels: Sequence[float], report: ReportFn | None = None
    ) -> dict[str, float]:
        result = super().fit(inputs, labels, report)
        if self.stacker is not None:  # the stack saw the validation rows: score it out of fold
            result["valid_score"] = self._cross_validated_stack(inputs, labels)
        return result

    def _cross_validated_stack(self, inputs: Sequence[str], labels: Sequence[float]) -> float:
        from sklearn.model_selection import KFold

        inputs, y = list(inputs), np.asarray(labels, dtype=np.float64)
        if self.options.max_train and len(inputs) > self.options.max_train:
            keep = sorted(
                np.random.default_rng(self.options.seed).permutation(len(inputs))[: self.options.max_train]
            )
            inputs, y = [inputs[i] for i in keep], y[keep]
        _, valid = self.split(inputs)
        predictions = self.member_predictions([inputs[i] for i in valid])
        out = np.zeros(len(valid))
        for fit_rows, held in KFold(5, shuffle=True, random_state=self.options.seed).split(valid):
            stacker = Stacker(self.task).fit([p[fit_rows] for p in predictions], y[valid][fit_rows])
            out[held] = stacker.predict([p[held] for p in predictions])
        return self.score(out, y[valid])

    def _save(self, folder: Path) -> dict[str, Any]:
        for number, member in enumerate(self.members):
            member.save(folder / f"member{number}")
        if self.stacker is not None:
            joblib.dump(self.stacker, folder / "stacker.joblib")
        return {"members": len(self.members)}

    def _load(self, folder: Path, meta: dict[str, Any]) -> None:
        self.members = [Pipeline.load(folder / f"member{n}") for n in range(int(meta["members"]))]
        stacked = folder / "stacker.joblib"
        self.stacker = joblib.load(stacked) if stacked.is_file() else None
