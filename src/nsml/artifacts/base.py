"""The artifact interface. Archives travel as gzip'd tar streams in both directions.

Services talk to :class:`ArtifactStore` only and never build a path of their own. The
methods named ``local_*`` hand out a path on this host's disk: they are what a runner
genuinely needs locally (the folders a session's process runs in, reads or mounts) or
what a check must walk (a staged source's entry file, a dataset's layout). A store that
keeps its files elsewhere still materialises these on the server's disk; everything
else goes through streams and names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO


class UploadTooLarge(ValueError):
    """An upload went over the configured size limit."""


class BadArchive(ValueError):
    """An upload is not a readable tar.gz archive, or escapes its folder."""


class BadUploadId(BadArchive):
    """A name that no upload could have: refused before anything is read."""


class UnpackTooLarge(BadArchive):
    """An archive's members add up to more than the caller allows (a decompression bomb,
    or more than the owner's storage quota leaves)."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ArtifactStore(ABC):
    # uploads -------------------------------------------------------------------------
    @abstractmethod
    async def receive_upload(
        self, chunks: AsyncIterable[bytes], max_bytes: int, owner_id: int | None = None
    ) -> tuple[str, int]:
        """Store an archive arriving over the network without blocking the event loop;
        until it is used or discarded it counts as ``owner_id``'s pending upload."""

    @abstractmethod
    def discard_upload(self, upload_id: str) -> None: ...

    @abstractmethod
    def pending_bytes(self, owner_id: int, excluding: str | None = None) -> int:
        """Bytes of the owner's uploads not yet used (they count against the quota)."""

    @abstractmethod
    def cap(self, max_bytes: int | None) -> int:
        """What one archive may unpack to: the caller's bound, never over the hard cap."""

    # sessions ------------------------------------------------------------------------
    @abstractmethod
    def staged_source(
        self, max_bytes: int, upload_id: str | None = None, from_session: int | None = None
    ) -> AbstractContextManager[Path]:
        """A new session's files put together from an upload or another session's shipped
        source: yields the unpacked source (local, for the entry check); removed on exit
        unless :meth:`keep_source` moved it into place. Raises BadUploadId for an invalid
        upload id before anything is read, BadArchive or FileNotFoundError after."""

    @abstractmethod
    def keep_source(self, staged: Path, session_id: int) -> None:
        """Make staged files the session's own and start its (empty) log."""

    @abstractmethod
    def open_source(self, session_id: int) -> BinaryIO:
        """The source archive byte for byte as shipped; FileNotFoundError or UnsafeFile
        when it is gone or was swapped for something that is not a plain file."""

    @abstractmethod
    def local_source_archive(self, session_id: int) -> Path:
        """The shipped archive on disk, which the process cannot write: the runner reads
        requirements from it, never from the work dir."""

    @abstractmethod
    def local_work_dir(self, session_id: int) -> Path:
        """The process's writable working directory."""

    @abstractmethod
    def local_log_path(self, session_id: int) -> Path:
        """Where the runner writes the process's stdout and stderr."""

    @abstractmethod
    def read_log(self, session_id: int, offset: int) -> bytes:
        """A page of the log from ``offset``; never read through a link."""

    @abstractmethod
    def append_log(self, session_id: int, line: str) -> None:
        """A platform line at the log's end; nothing when the session's files are gone."""

    @abstractmethod
    def append_scalars(self, session_id: int, points: Iterable[tuple[str, int, float, float]]) -> None:
        """Metric points (tag, step, value, wall time) in the session's TensorBoard folder."""

    @abstractmethod
    def settle_session(self, session_id: int) -> None:
        """A session's process ended: whatever it wrote is made visible to every server
        before its end is recorded."""

    @abstractmethod
    def scratch_file(self) -> BinaryIO:
        """An unnamed temporary file on the store's disk (a download being packed)."""

    @abstractmethod
    def delete_session(self, session_id: int) -> None: ...

    # checkpoints ---------------------------------------------------------------------
    @abstractmethod
    def put_checkpoint(self, session_id: int, name: str, upload_id: str, max_bytes: int | None = None) -> int:
        """Unpack an uploaded checkpoint archive atomically; returns its size in bytes."""

    @abstractmethod
    def read_checkpoint(self, session_id: int, name: str) -> Iterator[bytes]:
        """The checkpoint as a tar.gz byte stream."""

    @abstractmethod
    def local_checkpoint_dir(self, session_id: int, name: str) -> Path:
        """A checkpoint's folder, which a resumed or forked process loads read-only."""

    @abstractmethod
    def delete_checkpoint(self, session_id: int, name: str) -> None: ...

    # datasets ------------------------------------------------------------------------
    @abstractmethod
    def staged_dataset(self) -> AbstractContextManager[Path]:
        """A fresh local path (not yet created) to put an incoming dataset together in, so
        its layout can be checked; removed on exit unless :meth:`keep_dataset` moved it."""

    @abstractmethod
    def unpack_upload(self, upload_id: str, target: Path, max_bytes: int | None = None) -> None:
        """Extract an upload into ``target`` (which must not exist), safely."""

    @abstractmethod
    def keep_dataset(self, staged: Path, name: str, version: int = 1) -> None:
        """Register staged files as ``version`` of ``name`` and make them the current
        files; FileExistsError when that name (version 1) or version is taken. Readers
        of an older version keep reading it."""

    @abstractmethod
    def restore_dataset_version(self, name: str, version: int) -> None:
        """Make ``version`` current again and drop the one kept after it."""

    @abstractmethod
    def prune_dataset_versions(self, name: str) -> None:
        """Drop the files of every version but the current one (no session reads them)."""

    @abstractmethod
    def delete_dataset(self, name: str) -> None: ...

    @abstractmethod
    def local_train_dir(self, dataset: str) -> Path:
        """A dataset's train split, which sessions on this host mount read-only."""

    @abstractmethod
    def read_train_split(self, dataset: str) -> Iterator[bytes]:
        """The train split as a tar.gz byte stream, for runners on other machines."""

    @abstractmethod
    def local_dataset_dir(self, dataset: str) -> Path:
        """A dataset's whole folder, test labels included: only the server's scoring reads
        it, never a session."""

    @abstractmethod
    def keep_phase_test(self, staged: Path, dataset: str, phase: str) -> None:
        """Install ``staged`` (a folder holding ``test/``) as a competition phase's hidden
        test set; FileExistsError when the phase has one already."""

    @abstractmethod
    def local_phase_dir(self, dataset: str, phase: str) -> Path:
        """The folder whose ``test/`` a phase's submissions are scored on; like the
        dataset's own test labels, only the server's scoring reads it."""

    # evaluations ---------------------------------------------------------------------
    @abstractmethod
    def local_evaluation_dir(self, name: str) -> Path:
        """The folder where one evaluation unpacks the session's source, runs it and keeps
        its log, on the host that drives it (the evaluation creates it when it starts)."""

    @abstractmethod
    def unpack_source(self, session_id: int, target: Path, max_bytes: int | None = None) -> None:
        """Extract a session's shipped source into ``target``, within the cap, for an
        evaluation to run it again."""

    # nsml.cache ----------------------------------------------------------------------
    @abstractmethod
    def local_cache_dir(self, owner: str) -> Path:
        """An owner's cache archives, created if need be: sessions on this host mount it."""

    @abstractmethod
    def cache_archive(self, owner: str, key: str) -> Path:
        """One cache archive in :meth:`local_cache_dir`, served as a file."""

    @abstractmethod
    def put_cache(self, owner: str, key: str, upload_id: str) -> tuple[int, bool]:
        """Keep an uploaded cache archive unless an equal one landed first: (size, stored)."""

    @abstractmethod
    def delete_cache(self, owner: str, key: str) -> None: ...

    # shared resources ----------------------------------------------------------------
    @abstractmethod
    def put_shared(self, name: str, version: str, upload_id: str) -> tuple[int, int]:
        """Keep a checked upload as ``version`` of a shared resource; (unpacked bytes, files)."""

    @abstractmethod
    def open_shared(self, name: str, version: str) -> BinaryIO:
        """FileNotFoundError when a replace or rm removed that version meanwhile."""

    @abstractmethod
    def delete_shared(self, name: str, version: str) -> None: ...
