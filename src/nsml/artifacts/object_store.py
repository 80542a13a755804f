"""Artifacts kept in an S3-protocol bucket, shared by every server and worker using it.

The durable copy of everything is an object in the bucket (``NSML_ARTIFACTS=s3://B/P``)::

    P/sessions/ID/code.tar.gz              the source as shipped
    P/sessions/ID/log.txt                  the log, mirrored every few seconds and at the end
    P/sessions/ID/tensorboard/FILE         metric event files, mirrored likewise
    P/checkpoints/ID/NAME.tar.gz           one archive per checkpoint
    P/datasets/NAME/versions/N.tar.gz      every kept version of a dataset
    P/datasets/NAME/current                the current version's number
    P/cache/OWNER/KEY.tar                  nsml.cache entries, byte for byte
    P/shared/NAME/VERSION.tar.gz           shared resources, byte for byte

Like MLflow's artifact repositories, the local file store under ``NSML_HOME`` (the
subclassed :class:`FileArtifactStore`) stays: it is where uploads arrive and writes are
staged, and it is the cache that the ``local_*`` paths point into, since a session's
process needs real folders. A write is checked and staged locally, then uploaded, and
only then returned to the service that records it: a checkpoint nobody could download
is never registered. A ``local_*`` path missing here is materialised from the bucket, so
a second server with an empty ``NSML_HOME`` finds the first one's checkpoints, datasets,
sources, logs and cache entries. The janitor keeps sweeping the local layout only.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import uuid
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from nsml.artifacts import dataset_versions
from nsml.artifacts.archives import LOG_PAGE_BYTES, extract, replace_folder
from nsml.artifacts.bucket import Bucket, BucketLocation, ObjectStoreError
from nsml.artifacts.filesystem import SOURCE_ARCHIVE, FileArtifactStore
from nsml.artifacts.log_mirror import Mirror
from nsml.artifacts.safe_io import open_regular, pack_tree_into

log = logging.getLogger("nsml.artifacts")
LOCK_STRIPES = 64
MIRROR_INTERVAL_S = 5.0  # how stale another server's view of a running session's log may be


class ObjectStoreArtifacts(FileArtifactStore):
    def __init__(
        self,
        home: Path,
        bucket: Bucket,
        max_unpacked_bytes: int | None = None,
        mirror_interval_s: float = MIRROR_INTERVAL_S,
    ) -> None:
        super().__init__(home, max_unpacked_bytes)
        self.bucket = bucket
        # one fetch of an object at a time (a fixed set of locks, so memory stays bounded)
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._mirror = Mirror(
            bucket, super().local_log_path, lambda id: self.session_dir(id) / "tensorboard", mirror_interval_s
        )

    def close(self) -> None:
        """Stop mirroring, after a last pass: every log is in the bucket as it ended."""
        self._mirror.stop()

    # materialising -----------------------------------------------------------------------
    def _key_lock(self, key: str) -> threading.Lock:
        return self._locks[zlib.crc32(key.encode()) % LOCK_STRIPES]

    def _fetch_file(self, key: str, target: Path) -> bool:
        """``target`` from the bucket unless already here; False when neither has it."""
        with self._key_lock(key):
            return target.is_file() or self.bucket.download(key, target)

    def _fetch_folder(self, key: str, target: Path) -> bool:
        """``target`` unpacked from its archive unless already here; False when neither
        has it."""
        with self._key_lock(key):
            return target.is_dir() or self._unpack_object(key, target)

    def _unpack_object(self, key: str, target: Path) -> bool:
        """Into the new folder ``target``, links and escapes refused as for uploads. The
        download lies in ``uploads/`` meanwhile, where the janitor finds it after a crash."""
        with tempfile.TemporaryDirectory(dir=self.layout.uploads, prefix=".fetch-") as scratch:
            archive = Path(scratch) / "object.tar.gz"
            if not self.bucket.download(key, archive):
                return False
            extract(open_regular(archive), target, self.max_unpacked_bytes)
        return True

    def _upload_folder(self, folder: Path, key: str) -> None:
        with tempfile.TemporaryDirectory(dir=self.layout.uploads, prefix=".pack-") as scratch:
            archive = Path(scratch) / "folder.tar.gz"
            with archive.open("wb") as out:
                pack_tree_into(folder, out)
            self.bucket.upload(archive, key)

    # sessions ---------------------------------------------------------------------------
    def _source_key(self, session_id: int) -> str:
        return self.bucket.key("sessions", str(session_id), SOURCE_ARCHIVE)

    def keep_source(self, staged: Path, session_id: int) -> None:
        """Uploaded before the files move into place (and before a runner gets the
        session), so any server can fork or evaluate it."""
        self.bucket.upload(staged.parent / SOURCE_ARCHIVE, self._source_key(session_id))
        super().keep_source(staged, session_id)
        self._mirror.watch(session_id)

    def local_source_archive(self, session_id: int) -> Path:
        path = super().local_source_archive(session_id)
        if not path.is_file():
            self._fetch_file(self._source_key(session_id), path)
        return path

    @contextmanager
    def staged_source(
        self, max_bytes: int, upload_id: str | None = None, from_session: int | None = None
    ) -> Iterator[Path]:
        """A fork of a session another server ran: its source is fetched first."""
        if from_session is not None:
            self.local_source_archive(from_session)
        with super().staged_source(max_bytes, upload_id, from_session) as staged:
            yield staged

    def read_log(self, session_id: int, offset: int) -> bytes:
        """This server's own log of a session it ran; another's, a range of the mirror."""
        if super().local_log_path(session_id).exists():
            return super().read_log(session_id, offset)
        return self.bucket.get_range(self._mirror.log_key(session_id), offset, LOG_PAGE_BYTES)

    def append_log(self, session_id: int, line: str) -> None:
        """Platform lines mark a start or an end: mirrored at once (or at the next pass,
        should the bucket not answer now; a session's end never waits on it)."""
        super().append_log(session_id, line)
        try:
            self._mirror.flush_log(session_id)
        except ObjectStoreError as exc:
            self._mirror.watch(session_id)
            log.warning("the log of session %s is not mirrored yet: %s", session_id, exc)

    def settle_session(self, session_id: int) -> None:
        try:
            self._mirror.settle(session_id)
        except ObjectStoreError as exc:  # the next pass tries again; the end is not held up
            self._mirror.mark_scalars(session_id)
            log.warning("session %s is not mirrored yet: %s", session_id, exc)

    def append_scalars(self, session_id: int, points: Iterable[tuple[str, int, float, float]]) -> None:
        super().append_scalars(session_id, points)
        self._mirror.mark_scalars(session_id)

    def delete_session(self, session_id: int) -> None:
        self._mirror.forget(session_id)
        self.bucket.delete_under("sessions", str(session_id))
        self.bucket.delete_under("checkpoints", str(session_id))
        super().delete_session(session_id)

    # checkpoints --------------------------------------------------------------------------
    def _checkpoint_key(self, session_id: int, name: str) -> str:
        return self.bucket.key("checkpoints", str(session_id), f"{name}.tar.gz")

    def put_checkpoint(self, session_id: int, name: str, upload_id: str, max_bytes: int | None = None) -> int:
        """The archive as uploaded goes to the bucket once it unpacked cleanly here; a
        failed upload removes the local copy too, so the service records nothing."""
        key = self._checkpoint_key(session_id, name)
        upload = self.upload_path(upload_id)
        kept = upload.with_name(f".tmp-{upload.name}")
        os.link(upload, kept)  # the local store discards the upload once unpacked
        try:
            with self._key_lock(key):
                size = super().put_checkpoint(session_id, name, upload_id, max_bytes)
                try:
                    self.bucket.upload(kept, key)
                    self._stamp(session_id, name).write_text(self.bucket.etag(key) or "")
                except ObjectStoreError:
                    super().delete_checkpoint(session_id, name)
                    raise
            return size
        finally:
            kept.unlink(missing_ok=True)

    def _stamp(self, session_id: int, name: str) -> Path:
        """The ETag of the object the local folder was unpacked from."""
        return self.layout.checkpoints / str(session_id) / f".{name}.etag"

    def local_checkpoint_dir(self, session_id: int, name: str) -> Path:
        """Fetched when missing here, or when the same name was saved again since (the
        object's ETag differs from the one the local folder came from)."""
        key = self._checkpoint_key(session_id, name)
        folder = super().local_checkpoint_dir(session_id, name)
        with self._key_lock(key):
            etag = self.bucket.etag(key)
            stamp = self._stamp(session_id, name)
            if etag is None or (folder.is_dir() and stamp.is_file() and stamp.read_text() == etag):
                return folder
            staging = folder.parent / f".tmp-{uuid.uuid4().hex}"
            try:
                if self._unpack_object(key, staging):
                    replace_folder(staging, folder)
                    stamp.write_text(etag)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return folder

    def read_checkpoint(self, session_id: int, name: str) -> Iterator[bytes]:
        return self.read_dir(self.local_checkpoint_dir(session_id, name))

    def delete_checkpoint(self, session_id: int, name: str) -> None:
        self.bucket.delete(self._checkpoint_key(session_id, name))
        self._stamp(session_id, name).unlink(missing_ok=True)
        super().delete_checkpoint(session_id, name)

    # datasets -----------------------------------------------------------------------------
    def _dataset_key(self, name: str, version: int) -> str:
        return self.bucket.key("datasets", name, "versions", f"{version}.tar.gz")

    def _current_version(self, name: str) -> int | None:
        text = self.bucket.get(self.bucket.key("datasets", name, "current"))
        return int(text) if text is not None and text.strip().isdigit() else None

    def keep_dataset(self, staged: Path, name: str, version: int = 1) -> None:
        """Installed here (the competition's folders move over from the current version,
        fetched first), uploaded, and only then named current in the bucket."""
        if version > 1:
            self.local_dataset_dir(name)
        if self.bucket.size(self._dataset_key(name, version)) is not None:
            raise FileExistsError(name)
        stale = dataset_versions.version_dir(self.layout.datasets, name, version)
        if stale.is_dir():  # fetched here before a server undid that version: out of the way,
            stale.rename(self.layout.datasets / f".old-{uuid.uuid4().hex}")  # the janitor removes it
        super().keep_dataset(staged, name, version)
        try:
            self._upload_folder(
                dataset_versions.version_dir(self.layout.datasets, name, version),
                self._dataset_key(name, version),
            )
            self.bucket.put(self.bucket.key("datasets", name, "current"), str(version).encode())
        except ObjectStoreError:
            if version > 1:
                super().restore_dataset_version(name, version - 1)
            else:
                super().delete_dataset(name)
            with suppress(ObjectStoreError):  # the bucket's first error is the one to tell
                self.bucket.delete(self._dataset_key(name, version))
            raise

    def restore_dataset_version(self, name: str, version: int) -> None:
        self.bucket.put(self.bucket.key("datasets", name, "current"), str(version).encode())
        self.bucket.delete(self._dataset_key(name, version + 1))
        super().restore_dataset_version(name, version)

    def prune_dataset_versions(self, name: str) -> None:
        current = self._current_version(name)
        keep = None if current is None else self._dataset_key(name, current)
        for key in self.bucket.keys_under("datasets", name, "versions"):
            if key != keep:
                self.bucket.delete(key)
        super().prune_dataset_versions(name)

    def delete_dataset(self, name: str) -> None:
        """The pointer first, so no server finds the dataset, then every version."""
        self.bucket.delete(self.bucket.key("datasets", name, "current"))
        self.bucket.delete_under("datasets", name)
        super().delete_dataset(name)

    def local_dataset_dir(self, dataset: str) -> Path:
        """The bucket's current version, fetched and made current here when another server
        registered or replaced it."""
        version = self._current_version(dataset)
        if version is None:
            return super().local_dataset_dir(dataset)
        datasets = self.layout.datasets
        folder = dataset_versions.version_dir(datasets, dataset, version)
        if folder.is_dir() or self._fetch_folder(self._dataset_key(dataset, version), folder):
            if super().local_dataset_dir(dataset) != folder.resolve():
                with self._key_lock(f"point:{dataset}"):
                    dataset_versions.point(datasets, dataset, version)
        return super().local_dataset_dir(dataset)

    def _phase_key(self, dataset: str, phase: str) -> str:
        return self.bucket.key("datasets", dataset, dataset_versions.PHASES, f"{phase}.tar.gz")

    def keep_phase_test(self, staged: Path, dataset: str, phase: str) -> None:
        """In the bucket first (kept apart from the versions, so a replaced dataset keeps
        it), then here."""
        key = self._phase_key(dataset, phase)
        if self.bucket.size(key) is not None:
            raise FileExistsError(phase)
        self._upload_folder(staged, key)
        try:
            super().keep_phase_test(staged, dataset, phase)
        except FileExistsError:
            pass  # fetched here already: the bucket's copy is the one just uploaded

    def local_phase_dir(self, dataset: str, phase: str) -> Path:
        """Fetched from the bucket when another server added the phase."""
        folder = super().local_phase_dir(dataset, phase)
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            self._fetch_folder(self._phase_key(dataset, phase), folder)
        return folder

    # nsml.cache ---------------------------------------------------------------------------
    def _cache_key(self, owner: str, key: str) -> str:
        return self.bucket.key("cache", owner, f"{key}.tar")

    def cache_archive(self, owner: str, key: str) -> Path:
        object_key = self._cache_key(owner, key)  # refuses a name that could leave its folder
        path = super().cache_archive(owner, key)
        if not path.is_file():
            self._fetch_file(object_key, path)
        return path

    def put_cache(self, owner: str, key: str, upload_id: str) -> tuple[int, bool]:
        """An equal entry stored by any server first wins, as on one server."""
        object_key = self._cache_key(owner, key)
        existing = self.bucket.size(object_key)
        if existing is not None:
            self.discard_upload(upload_id)
            return existing, False
        size, stored = super().put_cache(owner, key, upload_id)
        local = super().cache_archive(owner, key)
        try:
            self.bucket.upload(local, object_key)
        except ObjectStoreError:
            if stored:
                local.unlink(missing_ok=True)
            raise
        return size, stored

    def delete_cache(self, owner: str, key: str) -> None:
        self.bucket.delete(self._cache_key(owner, key))
        super().delete_cache(owner, key)

    # shared resources ---------------------------------------------------------------------
    def _shared_key(self, name: str, version: str) -> str:
        return self.bucket.key("shared", name, f"{version}.tar.gz")

    def put_shared(self, name: str, version: str, upload_id: str) -> tuple[int, int]:
        counts = super().put_shared(name, version, upload_id)
        try:
            self.bucket.upload(self._shared.path(name, version), self._shared_key(name, version))
        except ObjectStoreError:
            super().delete_shared(name, version)
            raise
        return counts

    def open_shared(self, name: str, version: str) -> BinaryIO:
        path = self._shared.path(name, version)
        if not path.is_file() and not self._fetch_file(self._shared_key(name, version), path):
            raise FileNotFoundError(f"shared {name} version {version}")
        return super().open_shared(name, version)

    def delete_shared(self, name: str, version: str) -> None:
        self.bucket.delete(self._shared_key(name, version))
        super().delete_shared(name, version)


def open_bucket(url: str, endpoint_url: str = "", attempts: int = 3) -> Bucket:
    """The bucket of ``NSML_ARTIFACTS``, checked to answer: ValueError for a URL that
    names none, ObjectStoreError (one line) when it cannot be reached."""
    bucket = Bucket(BucketLocation.parse(url), endpoint_url or None, attempts)
    bucket.check()
    return bucket


def open_artifact_store(
    home: Path, max_unpacked_bytes: int | None = None, url: str = "", endpoint_url: str = ""
) -> FileArtifactStore:
    """The file store under ``home``, or with ``url`` (``s3://BUCKET/PREFIX``) the object
    store using ``home`` as its cache."""
    if not url:
        return FileArtifactStore(home, max_unpacked_bytes)
    return ObjectStoreArtifacts(home, open_bucket(url, endpoint_url), max_unpacked_bytes)
