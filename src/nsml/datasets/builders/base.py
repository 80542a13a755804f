"""What every builder shares: its description, the folder it writes, and its errors.

A builder turns an upstream corpus into the 2018 layout in a folder; registering that
folder is the CLI's job, so builders never reach the server or the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nsml.datasets.layout import LayoutSummary, check_layout

DEFAULT_SEED = 2018

# Characters that end a line for str.splitlines() or readline(); a review must stay on one line.
_LINE_BREAKS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_TO_SPACE = str.maketrans({c: " " for c in _LINE_BREAKS})


def unreadable(path: Path, exc: Exception) -> BuildError:
    """A source file that is not UTF-8 text (or not tab-separated rows) named in one line,
    without its contents."""
    if isinstance(exc, UnicodeDecodeError):
        return BuildError(f"{path}: not UTF-8 text ({exc.reason}); convert it to UTF-8 first")
    return BuildError(f"{path}: not readable as tab-separated rows ({exc})")


class BuildError(RuntimeError):
    """A build that cannot go on; the message says what was wrong and what to do."""


@dataclass(frozen=True)
class BuildContext:
    """Where to read from (a local path or an http(s) URL), where to write, and the seed."""

    source: str
    out: Path
    cache_dir: Path
    seed: int = DEFAULT_SEED


@dataclass(frozen=True)
class Builder:
    name: str
    metric: str
    description: str
    upstream: str  # the default source: the public repository's URL
    sources: str  # one line for `nsml dataset builders`: which --source forms it reads
    build: Callable[[BuildContext], None] = field(repr=False)
    seeded: bool = False  # whether --seed changes what is built

    def run(self, context: BuildContext) -> LayoutSummary:
        self.build(context)
        return check_layout(context.out)


def clean(text: str) -> str:
    """One review per line: line breaks and tabs become spaces, runs of spaces stay as written."""
    return text.translate(_TO_SPACE).strip()


def write_split(out: Path, split: str, examples: Iterable[tuple[str, str]]) -> int:
    """Write ``split/split_data`` and ``split/split_label``; returns the number of examples."""
    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    with (
        (folder / f"{split}_data").open("w", encoding="utf-8", newline="\n") as data,
        (folder / f"{split}_label").open("w", encoding="utf-8", newline="\n") as labels,
    ):
        for text, label in examples:
            data.write(text + "\n")
            labels.write(label + "\n")
            count += 1
    return count
