"""tar.gz packing and unpacking for folders that travel over the API."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path


def pack(files: Iterable[tuple[Path, str]]) -> bytes:
    """Pack (path, name-in-archive) pairs; fast compression, since most of it is code."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path, arcname in files:
            tar.add(path, arcname=arcname, recursive=False)
    return buffer.getvalue()


def pack_dir(folder: Path) -> bytes:
    return pack((p, str(p.relative_to(folder))) for p in sorted(folder.rglob("*")))


def unpack(data: bytes, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(target, filter="data")
