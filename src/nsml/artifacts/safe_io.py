"""Reading what a session could have written, without the server's privileges leaking.

A session's process writes its work dir (and, unsandboxed, more). Anything it leaves
there may be a symbolic link to a file only the server may read (``server.json`` with
the admin token, ``/proc/self/environ``), a FIFO that blocks a reader forever, or a
file of many gigabytes. The helpers here open files without following a final link
(``O_NOFOLLOW``), accept regular files only, and read at most a bound, so that a
server-side reader never hands a session something it could not read itself.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class UnsafeFile(ValueError):
    """A file is a link, not a regular file, or larger than its reader allows."""


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file reached without a final link.

    Raises FileNotFoundError for a missing file, UnsafeFile for a link or anything else
    that is not a regular file (the error names the file, never its content).
    """
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UnsafeFile(f"{path.name} is a link or cannot be opened; only plain files are read") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFile(f"{path.name} is not a plain file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_regular(path: Path, max_bytes: int) -> bytes:
    """A regular file's bytes, refused when it is over ``max_bytes``."""
    with open_regular(path) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeFile(f"{path.name} is over {max_bytes} bytes")
    return data


def read_tail(path: Path, max_bytes: int) -> bytes:
    """The last ``max_bytes`` of a regular file (a log), b"" when missing or unsafe."""
    try:
        with open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - max_bytes))
            return handle.read(max_bytes)
    except (OSError, UnsafeFile):
        return b""


def archive_member(archive: Path, name: str, max_bytes: int) -> bytes | None:
    """One top-level member of a tar(.gz) as bytes; None when the archive has no such name.

    Only a regular file member is read, at most ``max_bytes`` of it; a link or a device
    of that name is refused with UnsafeFile. The archive itself is opened without
    following a link.
    """
    with open_regular(archive) as handle, tarfile.open(fileobj=handle, mode="r:*") as tar:
        found = None
        for member in tar:  # the last of a repeated name, as unpacking leaves it
            if os.path.normpath(member.name) == name:
                found = member
        if found is None:
            return None
        if not found.isfile():
            raise UnsafeFile(f"{name} in the shipped source is a link or not a plain file")
        if found.size > max_bytes:
            raise UnsafeFile(f"{name} in the shipped source is over {max_bytes // 1024} KiB")
        extracted = tar.extractfile(found)
        return b"" if extracted is None else extracted.read(max_bytes)


def pack_tree(folder: Path) -> bytes:
    """A folder as tar.gz: folders and regular files only, no link followed or stored.

    For a session's work dir that travels to another machine: whatever links or FIFOs
    the session left there are skipped, and a file swapped for a link between the walk
    and the read is caught by ``O_NOFOLLOW``.
    """
    buffer = io.BytesIO()
    pack_tree_into(folder, buffer)
    return buffer.getvalue()


def pack_tree_into(folder: Path, out: BinaryIO) -> None:
    """:func:`pack_tree` written to ``out`` (a file, for folders too big for memory)."""
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:
        for root, dirs, files in os.walk(folder, followlinks=False):
            base = Path(root)
            for name in sorted(dirs):
                path = base / name
                if path.is_symlink():
                    continue
                info = tarfile.TarInfo(str(path.relative_to(folder)))
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            for name in sorted(files):
                path = base / name
                try:
                    with open_regular(path) as handle:
                        status = os.fstat(handle.fileno())
                        info = tarfile.TarInfo(str(path.relative_to(folder)))
                        info.size, info.mtime = status.st_size, int(status.st_mtime)
                        info.mode = stat.S_IMODE(status.st_mode)
                        tar.addfile(info, handle)
                except (OSError, UnsafeFile):
                    continue
