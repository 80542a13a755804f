"""``nsml.shared``: restore a shared resource (e.g. pre-trained embeddings) into a folder.

Shared resources are published once by an organiser (``nsml shared push``) and readable
by every session, unlike ``nsml.cache`` whose entries belong to one owner. Off the
platform the same call reads ``nsml_local/shared/NAME`` (``nsml shared pull NAME`` puts a
copy there), the way ``nsml.load`` reads ``nsml_local/checkpoints``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsml.client.shared import local_copy, restore

DEFAULT_DIR = "nsml_shared"


def shared(
    name: str,
    path: str | os.PathLike[str] | None,
    *,
    on_platform: bool,
    api: Callable[[], Any],
    local_dir: Path,
) -> str:
    if on_platform:
        target = Path(path) if path is not None else Path(DEFAULT_DIR) / name
        version = restore(api(), name, target)
        print(f"[nsml] shared resource {name} (version {version[:12]}) restored to {target}", flush=True)
        return str(target)
    source = local_copy(local_dir, name)
    if not source.is_dir():
        raise FileNotFoundError(
            f"nsml.shared: not on the platform and no local copy of {name!r} at {source}; "
            f"fetch one with `nsml shared pull {name}`"
        )
    if path is None or Path(path).resolve() == source.resolve():
        return str(source)
    target = Path(path)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return str(target)
