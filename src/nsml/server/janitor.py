"""The janitor: removes what nothing uses any more, once at start and then on a schedule.

Disk fills up from three kinds of leftovers. Uploads that were never used (a client that
uploaded and went away); per-requirements environments under ``envs/`` that no session
has used for a long time; and orphans: folders of deleted sessions, ``.incoming-*``
staging folders and ``.part`` files of an operation a crash interrupted. Everything is
judged by age as well as by the store, so nothing still being written is touched. What
was freed is logged as counts and sizes, never contents.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nsml.artifacts import FileArtifactStore, dataset_versions
from nsml.runners.environments import EnvironmentFailed, declared_requirements, environment_key
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, NotFound
from nsml.store.entities import ACTIVE_STATUSES

log = logging.getLogger("nsml.server.janitor")
# a push records its installed files within a database write: unrecorded ones this old
# were left by a crash, and a dataset's users see them, so they wait less than uploads
DATASET_GRACE_S = 300.0


@dataclass
class Freed:
    """What one sweep removed, by kind: (count, bytes)."""

    kinds: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add(self, kind: str, size: int) -> None:
        count, total = self.kinds.get(kind, (0, 0))
        self.kinds[kind] = (count + 1, total + size)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.kinds.values())

    def summary(self) -> str:
        return ", ".join(
            f"{count} {kind} ({size / (1024 * 1024):.1f} MiB)"
            for kind, (count, size) in sorted(self.kinds.items())
        )


def _size(path: Path) -> int:
    """Bytes under ``path``, links not followed."""
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
    except OSError:
        return 0
    total = 0
    for root, _, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                pass
    return total


def _age(path: Path, now: float) -> float:
    try:
        return now - path.lstat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> int:
    size = _size(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return size


class Janitor:
    """Sweeps the folders of the file store's layout, so it takes that store, not the
    interface: leftovers are files on this disk, whatever backend keeps the artifacts."""

    def __init__(
        self,
        store: AbstractStore,
        artifacts: FileArtifactStore,
        settings: ServerSettings,
        on_tick: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self.on_tick = on_tick  # other scheduled upkeep (starting competition phases whose time came)
        self.artifacts = artifacts
        self.settings = settings
        self.layout = artifacts.layout
        self.environments = settings.home / "envs"  # the runners' (see ``app.make_runner``)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """A first sweep now, then one every ``janitor_interval_s`` (0: none at all)."""
        if self.settings.janitor_interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="nsml-janitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception:  # a failed sweep must not end the schedule
                log.exception("the janitor's sweep failed")
            try:
                if self.on_tick is not None:
                    self.on_tick()
            except Exception:
                log.exception("the janitor's scheduled upkeep failed")
            self._stop.wait(self.settings.janitor_interval_s)

    def sweep(self, now: float | None = None) -> Freed:
        now = time.time() if now is None else now
        freed = Freed()
        self._uploads(now, freed)
        self._environments(now, freed)
        self._orphans(now, freed)
        if freed.kinds:
            log.info("janitor freed %.1f MiB: %s", freed.total_bytes / (1024 * 1024), freed.summary())
        return freed

    # uploads ------------------------------------------------------------------------------
    def _uploads(self, now: float, freed: Freed) -> None:
        """Archives uploaded and never used, and partial uploads, older than the setting."""
        for path in _children(self.layout.uploads):
            if _age(path, now) < self.settings.stale_upload_s:
                continue
            upload_id = path.name.split(".", 1)[0]
            freed.add("stale uploads", _remove(path))
            if upload_id.isalnum():
                self.artifacts.discard_upload(upload_id)  # no longer counted as pending

    # environments -------------------------------------------------------------------------
    def _environments(self, now: float, freed: Freed) -> None:
        """Per-requirements environments that no active session uses and none used lately
        (each use refreshes the age); removed under the build lock, so never mid-use."""
        root = self.environments
        if not root.is_dir():
            return
        in_use = self._environments_in_use()
        for path in _children(root):
            if not path.is_dir() or path.is_symlink():
                continue
            key = path.name.removesuffix(".building")
            marker = path / "ready" if (path / "ready").exists() else path  # "ready": touched on each use
            if key in in_use or _age(marker, now) < self.settings.stale_env_s:
                continue
            with (root / f"{key}.lock").open("a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # being built or reused right now
                freed.add("unused environments", _remove(path))
            # the lock file stays: a builder waiting on it must not find a new one beside it

    def _environments_in_use(self) -> set[str]:
        keys = set()
        for session in self.store.list_sessions(statuses=ACTIVE_STATUSES):
            archive = self.artifacts.local_source_archive(session.id)
            try:
                requirements = declared_requirements(archive)
            except (EnvironmentFailed, OSError):
                continue
            if requirements is not None:
                keys.add(environment_key(requirements))
        return keys

    # orphans ------------------------------------------------------------------------------
    def _orphans(self, now: float, freed: Freed) -> None:
        grace = self.settings.stale_upload_s
        known = {str(session.id) for session in self.store.list_sessions()}
        for parent in (self.layout.sessions, self.layout.checkpoints):
            for path in _children(parent):
                if _age(path, now) < grace:
                    continue
                if path.name.isdigit() and path.name not in known:
                    freed.add("folders of deleted sessions", _remove(path))
                elif _is_staging(path.name):
                    freed.add("interrupted writes", _remove(path))
        staged = [*_children(self.layout.datasets), *_grandchildren(self.layout.checkpoints)]
        staged += [p for p in _children(self.layout.evaluations) if p.name.startswith("run-")]
        for path in staged:
            if (_is_staging(path.name) or path.name.startswith("run-")) and _age(path, now) >= grace:
                freed.add("interrupted writes", _remove(path))
        self._unrecorded_checkpoints(now, grace, known, freed)
        self._unrecorded_datasets(now, min(grace, DATASET_GRACE_S), freed)
        self._cache_orphans(now, grace, freed)

    def _unrecorded_checkpoints(self, now: float, grace: float, known: set[str], freed: Freed) -> None:
        """Checkpoint folders renamed into place whose record a crash kept from being
        written: never listed, so nobody could remove them but this."""
        for folder in _children(self.layout.checkpoints):
            if folder.name not in known:
                continue
            recorded = {checkpoint.name for checkpoint in self.store.list_checkpoints(int(folder.name))}
            for path in _children(folder):
                if not _is_staging(path.name) and path.name not in recorded and _age(path, now) >= grace:
                    freed.add("unrecorded checkpoints", _remove(path))

    def _unrecorded_datasets(self, now: float, grace: float, freed: Freed) -> None:
        """A push a crash cut between installing the files and recording them: a new
        dataset's files go (its name is free again), a replaced one links back to the
        version its record names, and the newer files go."""
        root = self.layout.datasets
        recorded = {dataset.name: dataset.version for dataset in self.store.list_datasets()}
        for name in dataset_versions.stored_names(root):
            versions = root / dataset_versions.VERSIONS / name
            found = [path for path in (root / name, versions) if path.is_symlink() or path.exists()]
            if any(_age(path, now) < grace for path in found):
                continue
            version = recorded.get(name)
            if version is None:
                freed.add("unrecorded datasets", sum(_size(path) for path in found))
                self.artifacts.delete_dataset(name)
            elif (
                dataset_versions.current_version(root, name) == version + 1
                and (versions / str(version)).is_dir()
            ):
                freed.add(
                    "unrecorded dataset versions",
                    _size(dataset_versions.version_dir(root, name, version + 1)),
                )
                self.artifacts.restore_dataset_version(name, version)

    def _cache_orphans(self, now: float, grace: float, freed: Freed) -> None:
        """Cache archives whose entry was removed from the store (or never recorded)."""
        for folder in _children(self.layout.cache):
            try:
                owner = self.store.get_user(folder.name)
            except NotFound:
                continue
            keys = {entry.key for entry in self.store.list_cache(owner.id)}
            for path in _children(folder):
                if path.suffix == ".tar" and path.stem not in keys and _age(path, now) >= grace:
                    freed.add("unreferenced cache archives", _remove(path))


def _is_staging(name: str) -> bool:
    """Names the platform writes under before a rename: never a finished artifact."""
    return name.startswith((".incoming-", ".tmp-", ".old-")) or ".part" in name


def _children(folder: Path) -> Iterable[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _grandchildren(folder: Path) -> list[Path]:
    return [child for parent in _children(folder) if parent.is_dir() for child in _children(parent)]
