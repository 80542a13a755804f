"""``nsml admin backup``: the database and the artifact folders, in one archive.

A server whose artifacts live in a bucket (``NSML_ARTIFACTS``) adds every object under
its prefix: its own folders hold only what it fetched, the bucket holds everything.

The database is copied while the server runs: SQLite through its online backup API
(one step, so the copy is one consistent snapshot even while sessions report), or
``pg_dump`` (one transaction). The artifact folders are walked without following a
link and each file is opened with ``O_NOFOLLOW`` (``safe_io``): a session's work dir may
hold links to files only the server may read, and those must not end up in an archive.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

from nsml.artifacts.safe_io import UnsafeFile, open_regular
from nsml.backups import (
    BUCKET_FOLDER,
    DATABASE_MEMBERS,
    FOLDERS,
    BackupError,
    BackupWriter,
    pg_dump,
    safe_name,
)
from nsml.server.errors import BadRequest
from nsml.server.settings import ServerSettings


def write_backup(settings: ServerSettings) -> Path:
    """The archive, in a folder of its own that the caller removes once it is sent."""
    folder = Path(tempfile.mkdtemp(prefix=".backup-", dir=settings.home))
    try:
        path = folder / "nsml-backup.tar"
        writer = BackupWriter(path)
        kind = _add_database(writer, settings.db_url, folder)
        counts = {name: _add_folder(writer, settings.home, name) for name in FOLDERS}
        if settings.artifacts_url:
            counts[BUCKET_FOLDER] = _add_bucket(writer, settings, folder)
        writer.finish(kind, counts)
        return path
    except BackupError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise BadRequest(str(exc)) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def remove_backup(path: Path) -> None:
    """Once sent, the archive's folder goes: a copy of everything must not linger."""
    shutil.rmtree(path.parent, ignore_errors=True)


def _add_database(writer: BackupWriter, db_url: str, scratch: Path) -> str:
    url = make_url(db_url)
    kind = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql"
    copy = scratch / "database"
    if kind == "sqlite":
        source = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True, timeout=60)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)  # all pages in one step: one consistent snapshot
        finally:
            target.close()
            source.close()
    else:
        pg_dump(copy, db_url)
    with copy.open("rb") as handle:
        writer.add_file(DATABASE_MEMBERS[kind], handle, os.fstat(handle.fileno()).st_size)
    copy.unlink()
    return kind


def _add_bucket(writer: BackupWriter, settings: ServerSettings, scratch: Path) -> int:
    """Every object under the prefix, as ``bucket/KEY``: fetched one at a time, so the
    scratch space needed is that of the largest object."""
    from nsml.artifacts.bucket import ObjectStoreError
    from nsml.artifacts.object_store import open_bucket

    objects = 0
    try:
        bucket = open_bucket(settings.artifacts_url, settings.s3_endpoint_url)
        writer.add_folder(BUCKET_FOLDER)
        for key in bucket.keys_under():
            name = f"{BUCKET_FOLDER}/{bucket.relative(key)}"
            copy = scratch / "object"
            if not safe_name(name) or not bucket.download(key, copy):
                continue  # not one of ours, or removed since it was listed
            with copy.open("rb") as handle:
                writer.add_file(name, handle, os.fstat(handle.fileno()).st_size)
            copy.unlink()
            objects += 1
    except ObjectStoreError as exc:
        raise BackupError(f"the bucket could not be backed up: {exc}") from None
    return objects


def _add_folder(writer: BackupWriter, home: Path, name: str) -> int:
    """Folders and plain files under ``home/name``; links and devices are left out."""
    top, files = home / name, 0
    if not top.is_dir() or top.is_symlink():
        return 0
    writer.add_folder(name)
    for root, dirs, names in os.walk(top, followlinks=False):
        base = Path(root)
        dirs[:] = sorted(d for d in dirs if not (base / d).is_symlink())
        for folder in dirs:
            writer.add_folder(str((base / folder).relative_to(home)))
        for file_name in sorted(names):
            path = base / file_name
            try:
                with open_regular(path) as handle:
                    status = os.fstat(handle.fileno())
                    relative = str(path.relative_to(home))
                    writer.add_file(
                        relative, handle, status.st_size, status.st_mtime, stat.S_IMODE(status.st_mode)
                    )
                    files += 1
            except (OSError, UnsafeFile):
                continue
    return files
