"""``nsml.shared``: restore a shared resource (e.g. pre-trained embeddings) into a folder.

Shared resources are published once by an organiser (``nsml shared push``) and readable
by every session, unlike ``nsml.cache`` whose entries belong to one owner. Off the
platform the same call reads ``nsml_local/shared/NAME`` (``nsml shared pull NAME`` puts a
copy there), the way ``nsml.load`` reads ``nsml_local/checkpoints``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DIR = "nsml_shared"


def local_copy(local_dir: Path, name: str) -> Path:
    return local_dir / "shared" / name


def restore(api: Any, name: str, target: Path) -> str:
    """Download NAME's archive and put its files at ``target`` in one rename; its version."""
    target = target.absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".nsml-shared-{name}-", dir=target.parent) as scratch:
        archive = Path(scratch) / "archive.tar.gz"
        version = str(api.download_shared(name, archive))
        unpacked = Path(scratch) / "files"
        with tarfile.open(archive, mode="r:*") as tar:
            tar.extractall(unpacked, filter="data")
        archive.unlink()
        if target.exists():  # a previous restore: swap it out whole
            old = Path(scratch) / "old"
            os.replace(target, old)
        os.replace(unpacked, target)
    return version


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
