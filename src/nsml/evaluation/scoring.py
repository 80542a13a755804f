"""Scoring predictions against a dataset's hidden labels.

``folder`` is the dataset's folder (``train/``, ``test/``) as the organiser uploaded it.
The labels are read here, in the server, and go nowhere else: a participant's script
never sees them, and a message about a submission's predictions does not quote values
made from the hidden test inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nsml.evaluation.metrics import MetricInfo, check_predictions, metric_info, parse_labels
from nsml.evaluation.split import split_indices
from nsml.store.entities import Dataset


def read_test_inputs(folder: Path) -> list[str]:
    return (folder / "test" / "test_data").read_text(encoding="utf-8").splitlines()


def read_labels(folder: Path, split: str) -> list[float]:
    return parse_labels((folder / split / f"{split}_label").read_text().splitlines())


def known_classes(folder: Path, metric: MetricInfo, test_root: Path | None = None) -> list[float]:
    """The known classes (classification), or the training label range (regression)."""
    train = read_labels(folder, "train")
    if metric.task == "classification":
        return sorted(set(train) | set(read_labels(test_root or folder, "test")))
    return [min(train), max(train)]


def check_preview(dataset: Dataset, folder: Path, predictions: list[Any], count: int) -> None:
    """The checks of a real submission, so a dry run passes only what it would accept;
    the preview's inputs are public, so the message may quote the value."""
    metric = metric_info(dataset.metric)
    check_predictions(metric, predictions, count, known_classes(folder, metric))


def score(
    dataset: Dataset, folder: Path, predictions: list[Any], test_root: Path | None = None
) -> tuple[float, float]:
    """The (public, private) scores of predictions for the whole test set; ``test_root``
    holds the ``test/`` folder when it is not the dataset's own (a phase's)."""
    metric = metric_info(dataset.metric)
    labels = read_labels(test_root or folder, "test")
    # the values are the participant's, who had the test inputs: a message must not quote them
    classes = known_classes(folder, metric, test_root)
    values = check_predictions(metric, predictions, len(labels), classes, quote=False)
    public, private = split_indices(dataset.name, len(labels), dataset.public_fraction)

    def part(indices: Sequence[int]) -> float:
        return metric.score([labels[i] for i in indices], [values[i] for i in indices])

    return part(public), part(private)


def preview_rows(inputs: list[str], predictions: list[Any]) -> list[dict[str, Any]]:
    """``submit -t``'s table: each input beside its (probability, prediction)."""
    return [
        {
            "input": text,
            "probability": pair[0] if isinstance(pair, list) else None,
            "prediction": pair[1] if isinstance(pair, list) and len(pair) > 1 else pair,
        }
        for text, pair in zip(inputs, predictions, strict=True)
    ]
