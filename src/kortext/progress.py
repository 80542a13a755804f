"""Progress off a terminal: a bar redraws one line with \\r, which a log file (and so
`nsml logs -f`) shows as nothing at all for minutes; whole lines at a steady rate show it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class ProgressLines:
    """Progress as whole, flushed lines on stderr (stdout may carry a result, say ``--json``),
    at most one per ``interval_s``."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval_s

    def say(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        self._last = time.monotonic()


def track(items: Iterable[T], total: int, label: str, unit: str, interval_s: float = 10.0) -> Iterator[T]:
    """``items`` with a tqdm bar on a terminal, else a ``label done/total unit`` line
    every ``interval_s``."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(items, total=total, unit=unit, desc=label)
        return
    lines = ProgressLines(interval_s)
    for done, item in enumerate(items, start=1):
        if lines.due():
            lines.say(f"{label} {done}/{total} {unit}s")
        yield item
