"""``nsml download``: the files a session wrote, packed without trusting its work dir.

A session's outputs are the regular files of its work dir that it created or changed:
a file shipped with the source and still byte for byte as shipped is left out, and so
are ``__pycache__`` folders. The work dir is the session's to write, so it may hold
links to files only the server can read (``server.json``, ``/etc/shadow``), FIFOs, or
folders swapped for links while we walk. The walk therefore goes through directory
file descriptors (``os.fwalk`` without following links), every file is opened relative
to its folder's descriptor with ``O_NOFOLLOW``, and only regular files with a single
link are read: a link of either kind is skipped, its target never opened.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from nsml.artifacts.safe_io import open_regular

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
SKIPPED_FOLDERS = frozenset({"__pycache__"})


class OutputTooLarge(ValueError):
    """The outputs are over the bound a download may carry."""


class BadOutputPath(ValueError):
    """The PATH asked for is not a relative path inside the work dir."""


@dataclass(frozen=True)
class Packed:
    files: int
    bytes: int


def shipped_manifest(archive: Path) -> dict[str, tuple[int, str]]:
    """Path -> (size, sha256) of each regular member of the shipped source archive."""
    manifest: dict[str, tuple[int, str]] = {}
    with open_regular(archive) as handle, tarfile.open(fileobj=handle, mode="r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            extracted = tar.extractfile(member)
            if extracted is None:
                continue
            digest = hashlib.sha256()
            while chunk := extracted.read(1 << 20):
                digest.update(chunk)
            manifest[os.path.normpath(member.name)] = (member.size, digest.hexdigest())
    return manifest


def output_prefix(path: str) -> tuple[str, ...]:
    """The parts of a PATH inside the work dir; refuses absolute paths and ``..``."""
    if not path or path in (".", "./"):
        return ()
    pure = PurePosixPath(path)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts):
        raise BadOutputPath(f"{path!r} must be a path relative to the session's work dir, without '..'")
    return tuple(part for part in pure.parts if part != ".")


class _Exactly:
    """A file read as exactly ``size`` bytes: zeros if it shrank while we read it."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle, self._left = handle, size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._handle.read(n)
        data += b"\0" * (n - len(data))
        self._left -= n
        return data


def pack_outputs(
    work: Path,
    shipped: dict[str, tuple[int, str]],
    prefix: tuple[str, ...],
    max_bytes: int,
    out: BinaryIO,
) -> Packed:
    """Write the outputs under ``work/<prefix>`` to ``out`` as tar.gz.

    Raises OutputTooLarge as soon as the files would carry more than ``max_bytes``.
    """
    files = total = 0
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:
        for root, dirs, names, dir_fd in os.fwalk(work, follow_symlinks=False):
            relative = Path(root).relative_to(work).parts
            depth = len(relative)
            if relative[: len(prefix)] != prefix[:depth]:
                dirs[:] = []
                continue
            dirs[:] = sorted(
                d for d in dirs if d not in SKIPPED_FOLDERS and (depth >= len(prefix) or d == prefix[depth])
            )
            for name in sorted(names):
                parts = (*relative, name)
                if parts[: len(prefix)] != prefix:
                    continue
                packed = _add_file(tar, dir_fd, name, "/".join(parts), shipped, max_bytes - total)
                if packed is not None:
                    files, total = files + 1, total + packed
    return Packed(files, total)


def _add_file(
    tar: tarfile.TarFile,
    dir_fd: int,
    name: str,
    arcname: str,
    shipped: dict[str, tuple[int, str]],
    budget: int,
) -> int | None:
    """Add one file if it is a plain file the session wrote; the bytes added, or None."""
    try:
        fd = os.open(name, _FLAGS, dir_fd=dir_fd)
    except OSError:
        return None  # a link (ELOOP), gone, or unreadable: skipped, its target never opened
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink != 1:
            return None  # a FIFO, device, socket, or a hard link that may name another's file
        os.set_blocking(fd, True)
        size = status.st_size
        known = shipped.get(arcname)
        if known is not None and known[0] == size and _sha256(handle, size) == known[1]:
            return None  # shipped and unchanged: source, not output
        if size > budget:
            raise OutputTooLarge(f"the files are over {budget} bytes")
        handle.seek(0)
        info = tarfile.TarInfo(arcname)
        info.size, info.mtime = size, int(status.st_mtime)
        info.mode = stat.S_IMODE(status.st_mode) & 0o755
        tar.addfile(info, _Exactly(handle, size))
        return size


def _sha256(handle: BinaryIO, size: int) -> str:
    """The digest of a file's first ``size`` bytes, read in chunks (never all at once)."""
    digest, left = hashlib.sha256(), size
    while left > 0 and (chunk := handle.read(min(left, 1 << 20))):
        digest.update(chunk)
        left -= len(chunk)
    return digest.hexdigest()
