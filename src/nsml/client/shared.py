"""Shared resources on this machine: where a local copy lives, and restoring one from the
server in one rename. Both the SDK (``nsml.shared``) and ``nsml shared pull`` use them."""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any


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
