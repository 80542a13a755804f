"""Artifacts on the local file system, laid out under ``NSML_HOME``::

    datasets/NAME/{train,test}/...     registered datasets
    sessions/ID/code.tar.gz            the source as shipped (kept for fork/submit)
    sessions/ID/work/                  the session's working directory
    sessions/ID/data/train -> ...      what the session sees as DATASET_PATH
    sessions/ID/log.txt                stdout and stderr
    checkpoints/ID/NAME/               one folder per checkpoint
    uploads/ID.tar.gz                  archives waiting to be used
    cache/OWNER/KEY.tar                nsml.cache entries, plain tar as uploaded

Every write lands in a temporary path first and is renamed into place, so a reader
sees a complete checkpoint or none.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import os
import re
import shutil
import tarfile
import threading
import uuid
from collections.abc import AsyncIterable, Iterator
from pathlib import Path
from typing import BinaryIO

from nsml.artifacts.base import ArtifactStore, BadArchive, UnpackTooLarge, UploadTooLarge
from nsml.artifacts.safe_io import UnsafeFile, open_regular

_AT_FDCWD = -100
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_RENAME_EXCHANGE = 2


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    done = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    return done == 0


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


class FileArtifactStore(ArtifactStore):
    def __init__(self, home: Path, max_unpacked_bytes: int | None = None) -> None:
        self.home = home
        # the operator's hard cap on what one archive may unpack to, whatever the quota
        self.max_unpacked_bytes = MAX_UNPACKED_BYTES if max_unpacked_bytes is None else max_unpacked_bytes
        # uploads received or still arriving, and whose they are: they count against the
        # owner's quota until used or discarded (kept in memory: the janitor removes the
        # files of a previous server once they are stale)
        self._pending: dict[str, tuple[int | None, int]] = {}
        self._lock = threading.Lock()
        for sub in ("datasets", "sessions", "checkpoints", "uploads"):
            (home / sub).mkdir(parents=True, exist_ok=True)

    # well-known places -------------------------------------------------------------
    def dataset_dir(self, name: str) -> Path:
        return self.home / "datasets" / name

    def session_dir(self, session_id: int) -> Path:
        return self.home / "sessions" / str(session_id)

    def work_dir(self, session_id: int) -> Path:
        return self.session_dir(session_id) / "work"

    def log_path(self, session_id: int) -> Path:
        return self.session_dir(session_id) / "log.txt"

    def checkpoint_dir(self, session_id: int, name: str) -> Path:
        return self.home / "checkpoints" / str(session_id) / name

    # uploads -------------------------------------------------------------------------
    async def receive_upload(
        self, chunks: AsyncIterable[bytes], max_bytes: int, owner_id: int | None = None
    ) -> tuple[str, int]:
        """Stream to ``uploads/ID.tar.gz.part``, renamed into place once complete.

        The partial file goes on every way out: over the limit, a client that went
        away, a quota refusal raised by ``chunks``, a cancelled request.
        """
        upload_id = uuid.uuid4().hex
        target = self.upload_path(upload_id)
        partial = target.with_suffix(".part")
        written = 0
        self._charge(upload_id, owner_id, 0)
        done = False
        try:
            out = await asyncio.to_thread(partial.open, "wb")
            try:
                async for chunk in chunks:
                    written += len(chunk)
                    if written > max_bytes:
                        raise UploadTooLarge(f"upload is over the {max_bytes // (1024 * 1024)} MiB limit")
                    self._charge(upload_id, owner_id, written)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(out.close)
                partial.rename(target)
                done = True
            finally:
                out.close()
                partial.unlink(missing_ok=True)
        finally:
            if not done:
                self._forget(upload_id)
        return upload_id, written

    def _charge(self, upload_id: str, owner_id: int | None, size: int) -> None:
        with self._lock:
            self._pending[upload_id] = (owner_id, size)

    def _forget(self, upload_id: str) -> None:
        with self._lock:
            self._pending.pop(upload_id, None)

    def pending_bytes(self, owner_id: int, excluding: str | None = None) -> int:
        """Bytes of the owner's uploads not yet used, arriving ones included."""
        with self._lock:
            return sum(
                size for key, (owner, size) in self._pending.items() if owner == owner_id and key != excluding
            )

    def is_pending(self, upload_id: str) -> bool:
        with self._lock:
            return upload_id in self._pending

    def cap(self, max_bytes: int | None) -> int:
        """What one archive may unpack to: the caller's bound, never over the hard cap."""
        return self.max_unpacked_bytes if max_bytes is None else min(max_bytes, self.max_unpacked_bytes)

    def upload_path(self, upload_id: str) -> Path:
        """Where an upload lies; ids are what ``receive_upload`` makes (32 hex digits)."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise BadArchive(f"invalid upload id {upload_id[:64]!r}: expected what an upload returned")
        return self.home / "uploads" / f"{upload_id}.tar.gz"

    def discard_upload(self, upload_id: str) -> None:
        """Remove an upload if there is one; an invalid id names none (and must not turn the
        caller's clear error, from a ``finally``, into another)."""
        if _UPLOAD_ID.fullmatch(upload_id):
            self.upload_path(upload_id).unlink(missing_ok=True)
            self._forget(upload_id)

    def unpack_upload(self, upload_id: str, target: Path, max_bytes: int | None = None) -> None:
        source = self.upload_path(upload_id)
        if not source.exists():
            raise BadArchive(f"upload {upload_id!r} not found; upload the archive again")
        self.unpack_archive(source, target, max_bytes)

    def unpack_archive(self, source: Path, target: Path, max_bytes: int | None = None) -> None:
        """Extract ``source`` (opened without following a link) within the cap."""
        try:
            stream = open_regular(source)
        except UnsafeFile as exc:
            raise BadArchive(str(exc)) from None
        _extract(stream, target, self.cap(max_bytes))

    # checkpoints ---------------------------------------------------------------------
    def put_checkpoint(self, session_id: int, name: str, upload_id: str, max_bytes: int | None = None) -> int:
        final = self.checkpoint_dir(session_id, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            with self.upload_path(upload_id).open("rb") as stream:
                _extract(stream, staging, self.cap(max_bytes))
            size = _dir_size(staging)
            if final.exists():  # the same iteration saved again: replace it whole
                if exchange(staging, final):  # readers see the old or the new folder, never none
                    shutil.rmtree(staging, ignore_errors=True)
                else:
                    trash = final.parent / f".old-{uuid.uuid4().hex}"
                    final.rename(trash)
                    staging.rename(final)
                    shutil.rmtree(trash, ignore_errors=True)
            else:
                staging.rename(final)
            return size
        finally:
            self.discard_upload(upload_id)
            shutil.rmtree(staging, ignore_errors=True)

    def delete_checkpoint(self, session_id: int, name: str) -> None:
        """Out of sight in one rename, then removed."""
        folder = self.checkpoint_dir(session_id, name)
        trash = folder.parent / f".old-{uuid.uuid4().hex}"
        try:
            folder.rename(trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def read_checkpoint(self, session_id: int, name: str) -> Iterator[bytes]:
        return self.read_dir(self.checkpoint_dir(session_id, name))

    def cache_dir(self, owner: str) -> Path:
        """An owner's ``nsml.cache`` archives; sessions on this host see it read-only."""
        return self.home / "cache" / owner

    def cache_archive(self, owner: str, key: str) -> Path:
        return self.cache_dir(owner) / f"{key}.tar"

    def put_cache(self, owner: str, key: str, upload_id: str) -> tuple[int, bool]:
        """Keep an uploaded cache archive as it came, unless an equal one landed first.

        The archive is checked (regular files and folders, no path leaving its root) and
        then served back byte for byte on every hit: no unpacking, no recompression.
        Returns (size, stored): of two sessions that computed the same key at once, the
        first rename wins and the second upload is dropped whole.
        """
        final = self.cache_archive(owner, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        source = self.upload_path(upload_id)
        try:
            _check_archive(source)
            size = source.stat().st_size
            if final.exists():
                return final.stat().st_size, False
            try:
                os.link(source, final)  # fails if another upload got there first
            except FileExistsError:
                return final.stat().st_size, False
            return size, True
        finally:
            self.discard_upload(upload_id)

    def delete_cache(self, owner: str, key: str) -> None:
        self.cache_archive(owner, key).unlink(missing_ok=True)

    def read_dir(self, folder: Path) -> Iterator[bytes]:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
        buffer.seek(0)
        while chunk := buffer.read(1 << 20):
            yield chunk

    def delete_session(self, session_id: int) -> None:
        for folder in (self.session_dir(session_id), self.home / "checkpoints" / str(session_id)):
            shutil.rmtree(folder, ignore_errors=True)


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


def _check_archive(path: Path) -> None:
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


def _extract(stream: BinaryIO, target: Path, max_bytes: int | None = None) -> None:
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
        raise BadArchive(f"the uploaded archive could not be unpacked: {exc}") from exc
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
