"""File-level helpers of the local store: checking and unpacking archives, swapping
folders in one step, reading log pages. Every one of them refuses links and paths that
leave their folder, since what they read may come from a session or an upload."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tarfile
import uuid
from pathlib import Path
from typing import BinaryIO

from nsml.artifacts.base import BadArchive, UnpackTooLarge
from nsml.artifacts.safe_io import UnsafeFile, open_regular

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    return bool(done == 0)


def replace_folder(staging: Path, final: Path) -> None:
    """Move ``staging`` to ``final``, replacing a folder there: readers see the old or the
    new one, never none (where the system cannot swap, for the moment of two renames)."""
    if not final.exists():
        staging.rename(final)
    elif exchange(staging, final):
        shutil.rmtree(staging, ignore_errors=True)
    else:
        trash = final.parent / f".old-{uuid.uuid4().hex}"
        final.rename(trash)
        staging.rename(final)
        shutil.rmtree(trash, ignore_errors=True)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


LOG_PAGE_BYTES = 1 << 20


def read_log_page(path: Path, offset: int, limit: int = LOG_PAGE_BYTES) -> bytes:
    """Up to ``limit`` bytes of a log from ``offset``; nothing for a log not written yet,
    for one that is not a regular file (never read through a link), nor from past its end
    (the system refuses to seek that far for huge offsets)."""
    try:
        with open_regular(path) as log:
            if offset >= os.fstat(log.fileno()).st_size:
                return b""
            log.seek(offset)
            return log.read(limit)
    except (FileNotFoundError, UnsafeFile):
        return b""


def check_archive(path: Path) -> None:
    """A readable tar of regular files and folders whose names stay inside it."""
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                name = member.name
                if (
                    name.startswith("/")
                    or ".." in Path(name).parts
                    or not (member.isfile() or member.isdir())
                ):
                    raise BadArchive(f"the archive holds {name!r}, which is not a plain file inside it")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BadArchive(f"the uploaded archive could not be read: {exc}") from exc


MAX_UNPACKED_BYTES = int(os.environ.get("NSML_MAX_UNPACKED_MB", "16384")) * 1024 * 1024


def extract(stream: BinaryIO, target: Path, max_bytes: int | None = None) -> None:
    """Extract a tar.gz into a new folder, refusing links, paths outside it, and archives
    that would unpack to more than ``max_bytes`` (a small gzip can hide terabytes)."""
    if target.exists():
        raise BadArchive(f"{target} already exists")
    limit = MAX_UNPACKED_BYTES if max_bytes is None else max_bytes
    partial = target.parent / f".{target.name}.part-{uuid.uuid4().hex}"
    partial.mkdir(parents=True)
    try:
        with stream, tarfile.open(fileobj=stream, mode="r:*") as tar:
            total = 0
            for member in tar:  # sizes come from the headers, before anything is written
                total += max(member.size, 0)
                if total > limit:
                    raise UnpackTooLarge(
                        f"the archive unpacks to more than {limit // (1024 * 1024)} MiB; it is refused",
                        limit,
                    )
            tar.extractall(partial, filter="data")
        os.replace(partial, target)
    except (tarfile.TarError, EOFError, OSError) as exc:  # the message may name a member, no content
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # the disk is full, not the archive bad: the server says so (a 507)
        raise BadArchive(f"the uploaded archive could not be unpacked: {exc}") from exc
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
