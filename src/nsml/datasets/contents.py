"""What a dataset's files must hold for sessions and scoring to read them, checked before
anything is registered.

Sessions read ``train_data`` as UTF-8; scoring reads ``test_data`` as UTF-8 lines and
parses every label with ``float`` (``nsml.evaluation.metrics.parse_labels``): the train
labels give the classes (classification) or the allowed range (regression), the test
labels are what predictions are compared with. A file that breaks one of these would
fail every session or every submission later, so it is refused now. Messages name the
file, the line and the reason, never the line's content: test files are hidden.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from nsml.datasets.layout import TEST_FILES, TRAIN_FILES, LayoutError, LayoutSummary, check_layout
from nsml.evaluation.metrics import metric_info

_FIX = "fix it and push again"


def check_contents(root: Path, metric: str) -> LayoutSummary:
    """The layout checks, then every line of every file; raises :class:`LayoutError`."""
    summary = check_layout(root)
    info = metric_info(metric)
    _check_text(root, TRAIN_FILES[0], single_lines=False)
    _check_labels(root, TRAIN_FILES[1], info.task)
    if summary.test_size:
        _check_text(root, TEST_FILES[0], single_lines=True)
        _check_labels(root, TEST_FILES[1], info.task)
    return summary


def _lines(root: Path, name: str) -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending), decoded as UTF-8."""
    with (root / name).open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise LayoutError(
                    f"{name} line {number} is not UTF-8 text: save the file as UTF-8 "
                    "(e.g. iconv -f latin1 -t utf-8) and push again"
                ) from None
            yield number, text.removesuffix("\n").removesuffix("\r")


def _check_text(root: Path, name: str, single_lines: bool) -> None:
    """UTF-8 throughout; for test inputs also no other line break (``\\r``, U+2028...),
    which would split one input in two where scoring reads the lines."""
    for number, text in _lines(root, name):
        if single_lines and len(text.splitlines()) > 1:
            raise LayoutError(
                f"{name} line {number} holds a line break other than \\n (such as a lone \\r or "
                f"U+2028), which would split it into two test inputs; {_FIX}"
            )


def _check_labels(root: Path, name: str, task: str) -> None:
    for number, text in _lines(root, name):
        where = f"{name} line {number}"
        if not text.strip():
            raise LayoutError(f"{where} is empty: every example needs a label; {_FIX}")
        try:
            value = float(text.strip())
        except ValueError:
            kind = "a class number (e.g. 0 or 1)" if task == "classification" else "a number"
            raise LayoutError(
                f"{where} is not a number: labels of a {task} dataset must be {kind}; "
                f"map class names to numbers, {_FIX}"
            ) from None
        if not math.isfinite(value):
            raise LayoutError(f"{where} is not a finite number (nan or inf); {_FIX}")
