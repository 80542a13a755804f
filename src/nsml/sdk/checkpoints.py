"""The path the bound ``save`` writes to and the bound ``load`` reads from.

In 2018 the bound ``save(dir_name)`` got a path that did not exist yet, and scripts used it
either as a file (``torch.save(state, dir_name)``, the movie-review baseline) or as a
folder (``os.makedirs(dir_name, exist_ok=True)``, the kin baseline). Both work here, as
does a script that writes into the folder without creating it (an earlier habit of this
platform): when ``save`` fails and has written nothing, it is called once more with the
folder made. ``load`` gets back what ``save`` wrote: the file, or the folder.

A checkpoint is always stored as a folder; one saved as a file holds that file under
:data:`SINGLE_FILE`, a name no folder checkpoint uses.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

SINGLE_FILE = "__nsml_checkpoint__"


def save_into(fn: Callable[..., Any], staging: Path, kwargs: dict[str, Any]) -> Path:
    """Run the bound save and return the folder to store as the checkpoint."""
    target = staging / "saved"
    try:
        fn(str(target), **kwargs)
    except Exception:
        if target.exists():
            raise
        target.mkdir()  # a script that writes into the folder without creating it
        fn(str(target), **kwargs)
    if target.is_dir():
        return target
    folder = staging / "folder"
    folder.mkdir()
    if target.exists():
        target.rename(folder / SINGLE_FILE)
    return folder


def load_path(folder: str | Path) -> str:
    """What the bound load gets for a stored checkpoint folder: its file, or the folder."""
    single = Path(folder) / SINGLE_FILE
    return str(single) if single.is_file() else str(folder)


def copy_checkpoint(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
