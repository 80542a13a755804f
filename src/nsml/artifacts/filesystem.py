"""Artifacts on the local file system, laid out under ``NSML_HOME``::

    datasets/NAME/{train,test}/...     registered datasets (a link to the current version)
    sessions/ID/code.tar.gz            the source as shipped (kept for fork/submit)
    sessions/ID/work/                  the session's working directory
    sessions/ID/data/train -> ...      what the session sees as DATASET_PATH
    sessions/ID/log.txt                stdout and stderr
    checkpoints/ID/NAME/               one folder per checkpoint
    uploads/ID.tar.gz                  archives waiting to be used
    cache/OWNER/KEY.tar                nsml.cache entries, plain tar as uploaded
    shared/NAME/VERSION.tar.gz         shared resources, as uploaded (``artifacts.shared``)
    evaluations/                       evaluation runs (the submission service's)

Every write lands in a temporary path first and is renamed into place, so a reader
sees a complete checkpoint or none.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import tarfile
import tempfile
import threading
import uuid
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO

from nsml.artifacts import dataset_versions
from nsml.artifacts.archives import (
    MAX_UNPACKED_BYTES,
    check_archive,
    dir_size,
    exchange,
    extract,
    read_log_page,
    replace_folder,
)
from nsml.artifacts.base import ArtifactStore, BadArchive, BadUploadId, UploadTooLarge
from nsml.artifacts.safe_io import UnsafeFile, open_regular
from nsml.artifacts.shared import SharedFiles

__all__ = ["FileArtifactStore", "Layout", "exchange", "read_log_page"]

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
SOURCE_ARCHIVE = "code.tar.gz"


@dataclass(frozen=True)
class Layout:
    """The top-level folders under ``NSML_HOME``, each named as its field, for whoever
    sweeps or serves them."""

    uploads: Path
    sessions: Path
    checkpoints: Path
    datasets: Path
    cache: Path
    shared: Path
    evaluations: Path

    @classmethod
    def under(cls, home: Path) -> Layout:
        return cls(*(home / folder.name for folder in fields(cls)))


class FileArtifactStore(ArtifactStore):
    def __init__(self, home: Path, max_unpacked_bytes: int | None = None) -> None:
        self.home = home
        self.layout = Layout.under(home)
        # the operator's hard cap on what one archive may unpack to, whatever the quota
        self.max_unpacked_bytes = MAX_UNPACKED_BYTES if max_unpacked_bytes is None else max_unpacked_bytes
        # uploads received or still arriving, and whose they are: they count against the
        # owner's quota until used or discarded (kept in memory: the janitor removes the
        # files of a previous server once they are stale)
        self._pending: dict[str, tuple[int | None, int]] = {}
        self._lock = threading.Lock()
        self._shared = SharedFiles(self.layout.shared)
        layout = self.layout
        for folder in (layout.datasets, layout.sessions, layout.checkpoints, layout.uploads):
            folder.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Nothing is held open on a local disk (an object store flushes here)."""

    # well-known places -------------------------------------------------------------
    def dataset_dir(self, name: str) -> Path:
        return self.layout.datasets / name

    def session_dir(self, session_id: int) -> Path:
        return self.layout.sessions / str(session_id)

    def checkpoint_dir(self, session_id: int, name: str) -> Path:
        return self.layout.checkpoints / str(session_id) / name

    def local_work_dir(self, session_id: int) -> Path:
        return self.session_dir(session_id) / "work"

    def local_log_path(self, session_id: int) -> Path:
        return self.session_dir(session_id) / "log.txt"

    def local_source_archive(self, session_id: int) -> Path:
        return self.session_dir(session_id) / SOURCE_ARCHIVE

    def local_checkpoint_dir(self, session_id: int, name: str) -> Path:
        return self.checkpoint_dir(session_id, name)

    def local_train_dir(self, dataset: str) -> Path:
        return self.local_dataset_dir(dataset) / "train"

    def local_dataset_dir(self, dataset: str) -> Path:
        """The current version's own folder: what a reader gets stays put when a newer
        version replaces it (``artifacts.dataset_versions``)."""
        return self.dataset_dir(dataset).resolve()

    def local_evaluation_dir(self, name: str) -> Path:
        return self.layout.evaluations / name

    def unpack_source(self, session_id: int, target: Path, max_bytes: int | None = None) -> None:
        self.unpack_archive(self.local_source_archive(session_id), target, max_bytes)

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
            raise BadUploadId(f"invalid upload id {upload_id[:64]!r}: expected what an upload returned")
        return self.layout.uploads / f"{upload_id}.tar.gz"

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
        extract(stream, target, self.cap(max_bytes))

    # checkpoints ---------------------------------------------------------------------
    def put_checkpoint(self, session_id: int, name: str, upload_id: str, max_bytes: int | None = None) -> int:
        final = self.checkpoint_dir(session_id, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".tmp-{uuid.uuid4().hex}"
        try:
            with self.upload_path(upload_id).open("rb") as stream:
                extract(stream, staging, self.cap(max_bytes))
            size = dir_size(staging)
            replace_folder(staging, final)  # the same iteration saved again: replaced whole
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

    # nsml.cache ----------------------------------------------------------------------
    def local_cache_dir(self, owner: str) -> Path:
        """Created even before the first entry: a session's runner mounts it read-only."""
        folder = self.layout.cache / owner
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def cache_archive(self, owner: str, key: str) -> Path:
        return self.layout.cache / owner / f"{key}.tar"

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
            check_archive(source)
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
        for folder in (self.session_dir(session_id), self.layout.checkpoints / str(session_id)):
            shutil.rmtree(folder, ignore_errors=True)

    # sessions ------------------------------------------------------------------------
    @contextmanager
    def staged_source(
        self, max_bytes: int, upload_id: str | None = None, from_session: int | None = None
    ) -> Iterator[Path]:
        """``sessions/.incoming-X/{work,code.tar.gz}``, renamed into place by ``keep_source``."""
        if from_session is not None:
            archive = self.local_source_archive(from_session)
        elif upload_id is not None:
            archive = self.upload_path(upload_id)
        else:
            raise BadArchive("no source to stage")
        staging = self.layout.sessions / f".incoming-{uuid.uuid4().hex}"
        try:
            self.unpack_archive(archive, staging / "work", max_bytes)
            shutil.copyfile(archive, staging / SOURCE_ARCHIVE)
            yield staging / "work"
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def keep_source(self, staged: Path, session_id: int) -> None:
        staged.parent.rename(self.session_dir(session_id))
        self.local_log_path(session_id).touch()

    def open_source(self, session_id: int) -> BinaryIO:
        return open_regular(self.local_source_archive(session_id))

    def read_log(self, session_id: int, offset: int) -> bytes:
        return read_log_page(self.local_log_path(session_id), offset)

    def settle_session(self, session_id: int) -> None:
        """Every server reads this one disk: nothing to publish."""

    def append_log(self, session_id: int, line: str) -> None:
        """Never through a link, should one stand in for the log."""
        path = self.local_log_path(session_id)
        if not path.parent.exists():
            return
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError:
            return
        with os.fdopen(fd, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def append_scalars(self, session_id: int, points: Iterable[tuple[str, int, float, float]]) -> None:
        from nsml.plotting import events  # TensorBoard's protobufs: only where metrics arrive

        events.append_scalars(self.session_dir(session_id) / "tensorboard", points)

    def scratch_file(self) -> BinaryIO:
        return tempfile.TemporaryFile(dir=self.home)

    # datasets ------------------------------------------------------------------------
    @contextmanager
    def staged_dataset(self) -> Iterator[Path]:
        staging = self.layout.datasets / f".incoming-{uuid.uuid4().hex}"
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def keep_dataset(self, staged: Path, name: str, version: int = 1) -> None:
        dataset_versions.install(self.layout.datasets, staged, name, version)

    def restore_dataset_version(self, name: str, version: int) -> None:
        dataset_versions.restore(self.layout.datasets, name, version)

    def prune_dataset_versions(self, name: str) -> None:
        dataset_versions.prune(self.layout.datasets, name)

    def delete_dataset(self, name: str) -> None:
        dataset_versions.delete(self.layout.datasets, name)

    def read_train_split(self, dataset: str) -> Iterator[bytes]:
        return self.read_dir(self.local_train_dir(dataset))

    def keep_phase_test(self, staged: Path, dataset: str, phase: str) -> None:
        target = self.local_phase_dir(dataset, phase)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            staged.rename(target)  # one rename: the phase has all of its test set or none
        except OSError:
            raise FileExistsError(phase) from None

    def local_phase_dir(self, dataset: str, phase: str) -> Path:
        """Inside the current version's folder, so it moves over to each new version."""
        return self.local_dataset_dir(dataset) / dataset_versions.PHASES / phase

    # shared resources ----------------------------------------------------------------
    def put_shared(self, name: str, version: str, upload_id: str) -> tuple[int, int]:
        try:
            return self._shared.put(name, version, self.upload_path(upload_id))
        finally:
            self.discard_upload(upload_id)

    def open_shared(self, name: str, version: str) -> BinaryIO:
        return self._shared.open(name, version)

    def delete_shared(self, name: str, version: str) -> None:
        self._shared.delete(name, version)
