"""Every version of a dataset in a folder of its own, and its name a link to the current one::

    datasets/NAME -> .versions/NAME/3       what new sessions and scoring read
    datasets/.versions/NAME/2/              kept while a session may still read it

A running session was given the resolved folder of the version it started with (mounted,
or linked to, read-only), so a ``push --replace`` never changes files under it; swapping
the link is one rename, so a reader sees the old version or the new one, never neither.
A dataset registered before versions existed is a plain folder at ``datasets/NAME``,
moved to ``.versions/NAME/1`` by its first replacement.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

VERSIONS = ".versions"  # not a dataset name: those start with a letter or digit
# the competition's own folders (a phase's hidden test set), not part of any one version:
# they move to each new version, so replacing the files never loses a phase's test set
PHASES = "phases"  # a phase's test set: never mounted into sessions (only train/ is)
COMPETITION_FOLDERS = (PHASES,)


def version_dir(datasets: Path, name: str, version: int) -> Path:
    return datasets / VERSIONS / name / str(version)


def install(datasets: Path, staged: Path, name: str, version: int) -> None:
    """Move ``staged`` in as ``version`` of ``name`` and make it the current one;
    FileExistsError when the name is taken (version 1) or that version exists already."""
    current = datasets / name
    if version == 1 and (current.exists() or current.is_symlink()):
        raise FileExistsError(name)
    target = version_dir(datasets, name, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise FileExistsError(name)
    if version > 1 and current.is_dir():
        _move_competition_folders(current.resolve(), staged)
    staged.rename(target)
    if current.is_dir() and not current.is_symlink():  # registered before versions existed
        current.rename(version_dir(datasets, name, version - 1))
    point(datasets, name, version)


def restore(datasets: Path, name: str, version: int) -> None:
    """Undo :func:`install` of ``version + 1`` (whose record could not be written)."""
    _move_competition_folders(version_dir(datasets, name, version + 1), version_dir(datasets, name, version))
    point(datasets, name, version)
    shutil.rmtree(version_dir(datasets, name, version + 1), ignore_errors=True)


def stored_names(datasets: Path) -> set[str]:
    """Every dataset with files here: a current link or folder, or versions only."""
    names = {p.name for p in _children(datasets) if not p.name.startswith(".")}
    return names | {p.name for p in _children(datasets / VERSIONS)}


def current_version(datasets: Path, name: str) -> int | None:
    """The version ``name`` links to (1 for a folder from before versions); None if none."""
    current = datasets / name
    if current.is_symlink():
        target = os.readlink(current)
        return int(Path(target).name) if Path(target).name.isdigit() else None
    return 1 if current.is_dir() else None


def prune(datasets: Path, name: str) -> None:
    """Remove every version but the current one."""
    current = (datasets / name).resolve()
    for folder in _versions(datasets, name):
        if folder.resolve() != current:
            shutil.rmtree(folder, ignore_errors=True)


def delete(datasets: Path, name: str) -> None:
    """The link (or plain folder) first, so nothing finds the dataset, then every version."""
    current = datasets / name
    if current.is_symlink():
        current.unlink()
    else:
        shutil.rmtree(current, ignore_errors=True)
    shutil.rmtree(datasets / VERSIONS / name, ignore_errors=True)


def _move_competition_folders(source: Path, target: Path) -> None:
    for folder in COMPETITION_FOLDERS:
        if (source / folder).is_dir():
            shutil.rmtree(target / folder, ignore_errors=True)  # an uploaded folder of that name
            (source / folder).rename(target / folder)


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _versions(datasets: Path, name: str) -> list[Path]:
    try:
        return [p for p in (datasets / VERSIONS / name).iterdir() if p.name.isdigit()]
    except OSError:
        return []


def point(datasets: Path, name: str, version: int) -> None:
    """Make ``version`` the current one, in one rename of the link."""
    link = datasets / f".tmp-{uuid.uuid4().hex}"
    link.symlink_to(Path(VERSIONS) / name / str(version))
    os.replace(link, datasets / name)
