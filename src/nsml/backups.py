"""The backup archive of a whole platform, and restoring one into a fresh NSML_HOME.

One uncompressed tar file (checkpoints and datasets are compressed already): the
database (a SQLite snapshot taken through SQLite's online backup API, or a ``pg_dump``
in its custom format), the artifact folders of ``NSML_HOME`` (datasets, sessions,
checkpoints, cache, shared, evaluations), a server with a bucket (``NSML_ARTIFACTS``)
every object under its prefix in ``bucket/``, and last ``manifest.json`` with the size
and SHA-256 of every file. The server writes it (``nsml admin backup``); the operator
restores it with the server stopped (``nsml admin restore``): every checksum is verified
before anything is written, and a home that already holds a platform is never
overwritten, so a restore can lose nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nsml.artifacts.bucket import Bucket

FORMAT = "opennsml-backup"
VERSION = 1
MANIFEST = "manifest.json"
FOLDERS = ("datasets", "sessions", "checkpoints", "cache", "shared", "evaluations")
DATABASE_MEMBERS = {"sqlite": "database/nsml.db", "postgresql": "database/nsml.pgdump"}
BUCKET_FOLDER = "bucket"  # the objects of a server whose artifacts live in a bucket
_CHUNK = 1 << 20


class BackupError(Exception):
    """Why a backup cannot be made or restored, in one line."""


class _Hashed:
    """A file as tar reads it: exactly ``size`` bytes (zeros for what it lost since its
    size was taken), hashed on the way."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self.handle, self.left, self.sha = handle, size, hashlib.sha256()

    def read(self, count: int = -1) -> bytes:
        count = self.left if count < 0 else min(count, self.left)
        data = self.handle.read(count)
        data += b"\0" * (count - len(data))
        self.left -= len(data)
        self.sha.update(data)
        return data


class BackupWriter:
    """Builds the archive; :meth:`finish` adds the manifest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
        self._files: dict[str, dict[str, Any]] = {}

    def add_folder(self, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        self._tar.addfile(info)

    def add_file(self, name: str, handle: IO[bytes], size: int, mtime: float = 0, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(mtime), mode & 0o777
        hashed = _Hashed(handle, size)
        self._tar.addfile(info, hashed)
        self._files[name] = {"size": size, "sha256": hashed.sha.hexdigest()}

    def finish(self, database: str, counts: dict[str, int]) -> None:
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "database": database,
            "counts": counts,
            "files": self._files,
        }
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime = len(data), int(datetime.now(timezone.utc).timestamp())
        self._tar.addfile(info, io.BytesIO(data))
        self._tar.close()


def safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and name == str(path) and bool(path.parts)


def verify(archive: Path) -> dict[str, Any]:
    """The archive's manifest, once every file matches its checksum; BackupError if not."""
    try:
        with tarfile.open(archive, "r:") as tar:
            manifest = _manifest(tar)
            seen: set[str] = set()
            for member in tar:
                if member.name == MANIFEST or member.isdir():
                    if not safe_name(member.name):
                        raise BackupError(f"{archive.name} holds an unsafe name {member.name!r}")
                    continue
                expected = manifest["files"].get(member.name)
                if not member.isfile() or expected is None or not safe_name(member.name):
                    raise BackupError(
                        f"{archive.name} holds {member.name!r}, which its manifest does not list"
                    )
                sha = hashlib.sha256()
                for chunk in _chunks(tar.extractfile(member)):
                    sha.update(chunk)
                if member.size != expected["size"] or sha.hexdigest() != expected["sha256"]:
                    raise BackupError(f"{member.name} in {archive.name} is damaged (its checksum differs)")
                seen.add(member.name)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BackupError(f"{archive} is not a readable backup archive ({exc})") from None
    missing = sorted(set(manifest["files"]) - seen)
    if missing:
        raise BackupError(f"{archive.name} lacks {missing[0]} (and {len(missing) - 1} more): it is cut short")
    return manifest


def _manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST)
        manifest: dict[str, Any] = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
    except (KeyError, AttributeError, ValueError):
        raise BackupError("this file is not an OpenNSML backup (no manifest.json)") from None
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise BackupError("this file is not an OpenNSML backup (its manifest is of another kind)")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise BackupError(f"this backup has format version {manifest.get('version')}; upgrade OpenNSML")
    if manifest.get("database") not in DATABASE_MEMBERS:
        raise BackupError(f"this backup's database kind {manifest.get('database')!r} is unknown")
    return manifest


def _chunks(handle: IO[bytes] | None) -> Iterator[bytes]:
    while handle is not None and (chunk := handle.read(_CHUNK)):
        yield chunk


def holds_platform(home: Path) -> bool:
    """Whether ``home`` already holds a platform's state, which a restore must not replace."""
    if (home / "nsml.db").exists():
        return True
    return any((home / folder).is_dir() and any((home / folder).iterdir()) for folder in FOLDERS)


def restore(archive: Path, home: Path, db_url: str = "", bucket: Bucket | None = None) -> dict[str, Any]:
    """Verify ``archive``, then unpack it into ``home`` (and ``db_url`` when PostgreSQL,
    ``bucket`` when it was taken of a server with one).

    ``home`` must not hold a platform already, nor the bucket's prefix an object; the
    files land in a staging folder first and are moved into place only once all of them
    are out and the objects are in the bucket.
    """
    manifest = verify(archive)
    _check_bucket(manifest, bucket)
    kind = manifest["database"]
    if kind == "postgresql" and not db_url:
        raise BackupError("this backup holds a PostgreSQL database; pass --db URL of an empty database")
    if kind == "sqlite" and db_url:
        raise BackupError("this backup holds a SQLite database; restore it without --db")
    if holds_platform(home):
        raise BackupError(
            f"{home} already holds a platform; restore into a fresh NSML_HOME (or move this one away)"
        )
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=home))
    try:
        with tarfile.open(archive, "r:") as tar:
            tar.extractall(staging, filter="data")
        try:
            if bucket is not None:
                _upload_objects(staging / BUCKET_FOLDER, bucket)
            if kind == "postgresql":
                pg_restore(staging / DATABASE_MEMBERS[kind], db_url)
        except BaseException:
            if bucket is not None:  # empty before: what is there now is this restore's, so a retry may run
                _empty(bucket)
            raise
        for folder in FOLDERS:
            if (staging / folder).is_dir():
                shutil.rmtree(home / folder, ignore_errors=True)  # empty: holds_platform said so
                os.replace(staging / folder, home / folder)
        if kind == "sqlite":
            os.replace(staging / DATABASE_MEMBERS[kind], home / "nsml.db")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def bucket_from_env() -> Bucket | None:
    """The bucket ``NSML_ARTIFACTS`` names, opened as the server opens it; None without one."""
    url = os.environ.get("NSML_ARTIFACTS", "").strip()
    if not url:
        return None
    from nsml.artifacts.bucket import ObjectStoreError
    from nsml.artifacts.object_store import open_bucket

    try:
        return open_bucket(url, os.environ.get("NSML_S3_ENDPOINT_URL", "").strip())
    except (ValueError, ObjectStoreError) as exc:
        raise BackupError(
            f"{exc}; check NSML_ARTIFACTS, NSML_S3_ENDPOINT_URL and the AWS credentials"
        ) from None


def _check_bucket(manifest: dict[str, Any], bucket: Bucket | None) -> None:
    has_objects = BUCKET_FOLDER in manifest.get("counts", {})
    if has_objects and bucket is None:
        raise BackupError(
            "this backup holds a bucket's artifacts; set NSML_ARTIFACTS (and NSML_S3_ENDPOINT_URL) "
            "to an empty bucket prefix and restore again"
        )
    if bucket is None:
        return
    if not has_objects:
        raise BackupError("this backup is of a server without a bucket; restore it with NSML_ARTIFACTS unset")
    if next(iter(bucket.keys_under()), None) is not None:
        raise BackupError(f"{bucket} already holds objects; restore into an empty bucket prefix")


def _upload_objects(folder: Path, bucket: Bucket) -> None:
    from nsml.artifacts.bucket import ObjectStoreError

    try:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file() and not path.is_symlink():
                bucket.upload(path, bucket.key(*path.relative_to(folder).parts))
    except (ObjectStoreError, ValueError) as exc:
        raise BackupError(f"the objects could not be put back into {bucket}: {exc}") from None


def _empty(bucket: Bucket) -> None:
    from nsml.artifacts.bucket import ObjectStoreError

    try:
        bucket.delete_under()
    except ObjectStoreError:
        pass  # the first error is the one to tell


def postgres_tool(name: str) -> str:
    """The path of ``pg_dump`` or ``pg_restore``: on PATH, or Debian's versioned folder."""
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if found is None:
        raise BackupError(f"{name} is not installed; install the PostgreSQL client (postgresql-client)")
    return str(found)


def libpq_target(db_url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy PostgreSQL URL as a libpq URI for the command-line tools, with the
    password moved to the environment (never on a command line others can list)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def pg_restore(dump: Path, db_url: str) -> None:
    target, env = libpq_target(db_url)
    command = [postgres_tool("pg_restore"), "--no-owner", "--exit-on-error", "--dbname", target, str(dump)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no reason given"])[0]
        raise BackupError(f"pg_restore failed: {why}; restore into an empty database")


def pg_dump(target_file: Path, db_url: str) -> None:
    target, env = libpq_target(db_url)
    command = [postgres_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target_file), target]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no reason given"])[0]
        raise BackupError(f"pg_dump failed: {why}")
