"""What ``nsml run`` ships: the current folder's source.

Skipped: dot-files and dot-folders, paths matched by any ``.gitignore`` or ``.nsmlignore``
on the way down (same syntax; ``.nsmlignore`` keeps out of a session what git should still
track, such as raw data or notebooks), ``__pycache__``, and ``nsml_local`` (where
off-platform runs keep checkpoints). A file over the per-file cap, or a total over the
session cap, stops the run with an error naming the offender, before anything is uploaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pathspec

ALWAYS_IGNORED = ("__pycache__/", "*.pyc", "nsml_local/")
IGNORE_FILES = (".gitignore", ".nsmlignore")
MAX_FILE_MB = float(os.environ.get("NSML_MAX_FILE_MB", "20"))
MAX_TOTAL_MB = float(os.environ.get("NSML_MAX_SHIP_MB", "100"))


class ShippingError(ValueError):
    """The folder cannot be shipped as it is; the message names the file and the fix."""


def collect_source(
    root: Path, max_file_mb: float = MAX_FILE_MB, max_total_mb: float = MAX_TOTAL_MB
) -> list[tuple[Path, str]]:
    root = root.resolve()
    always: pathspec.PathSpec[Any] = pathspec.GitIgnoreSpec.from_lines(ALWAYS_IGNORED)
    specs: list[tuple[Path, pathspec.PathSpec[Any]]] = [(root, always)]
    files: list[tuple[Path, str]] = []
    total = 0
    for current, dirs, names in os.walk(root):
        here = Path(current)
        for ignore_name in IGNORE_FILES:
            ignore_file = here / ignore_name
            if ignore_file.is_file():
                lines = ignore_file.read_text(errors="replace").splitlines()
                specs.append((here, pathspec.GitIgnoreSpec.from_lines(lines)))
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _ignored(specs, here / d, True))
        for name in sorted(names):
            path = here / name
            if name.startswith(".") or _ignored(specs, path, False) or path.is_symlink():
                continue
            size = path.stat().st_size
            relative = str(path.relative_to(root))
            if size > max_file_mb * 1024 * 1024:
                raise ShippingError(
                    f"{relative} is {size / 1024 / 1024:.1f} MiB, over the {max_file_mb:g} MiB "
                    "per-file limit; add it to .gitignore or put it in a dataset"
                )
            total += size
            if total > max_total_mb * 1024 * 1024:
                raise ShippingError(
                    f"the source is over {max_total_mb:g} MiB when {relative} is added; "
                    "add large files to .gitignore or .nsmlignore"
                )
            files.append((path, relative))
    return files


def _ignored(specs: list[tuple[Path, pathspec.PathSpec[Any]]], path: Path, is_dir: bool) -> bool:
    for base, spec in specs:
        try:
            relative = path.relative_to(base).as_posix()
        except ValueError:
            continue
        if spec.match_file(relative + ("/" if is_dir else "")):
            return True
    return False
