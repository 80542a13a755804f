"""``nsml.cache``: run a preprocessing function once, reuse its output files afterwards.

The key covers the dataset (name and version), the function's source and the content of
its arguments, so a result is reused exactly when recomputing it would give the same
files. On the platform results are stored by the server and shared by all sessions of
the same owner; off the platform they live in ``nsml_local/cache``.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO


def _feed(digest: Any, value: Any) -> None:
    """Hash a value by content, deterministically across processes."""
    if isinstance(value, bytes):
        digest.update(b"b" + len(value).to_bytes(8, "big") + value)
    elif isinstance(value, str):
        _feed(digest, value.encode())
    elif value is None or isinstance(value, (bool, int, float)):
        digest.update(repr(value).encode() + b";")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[%d" % len(value))
        for item in value:
            _feed(digest, item)
    elif isinstance(value, dict):
        digest.update(b"{%d" % len(value))
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, os.PathLike):  # a file or folder argument: what it holds, not its name
        _feed_path(digest, Path(value))
    elif hasattr(value, "tobytes") and hasattr(value, "dtype"):  # numpy arrays and the like
        _feed(digest, f"{value.dtype}{getattr(value, 'shape', '')}")
        _feed(digest, value.tobytes())
    else:
        _feed(digest, pickle.dumps(value, protocol=4))


def _feed_path(digest: Any, path: Path) -> None:
    if path.is_file():
        digest.update(b"f%d;" % path.stat().st_size)
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    elif path.is_dir():
        children = sorted(path.rglob("*"))
        digest.update(b"d%d;" % len(children))
        for child in children:
            _feed(digest, child.relative_to(path).as_posix())
            if child.is_file():
                _feed_path(digest, child)
    else:
        _feed(digest, f"missing:{path}")


def _function_identity(fn: Callable[..., Any]) -> bytes:
    try:
        return inspect.getsource(fn).encode()
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        return pickle.dumps((getattr(fn, "__qualname__", repr(fn)), code.co_code if code else b""))


def cache_key(fn: Callable[..., Any], paths: list[str], kwargs: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    _feed(digest, os.environ.get("NSML_DATASET_NAME", ""))
    _feed(digest, os.environ.get("NSML_DATASET_VERSION", ""))
    _feed(digest, _function_identity(fn))
    _feed(digest, [os.path.basename(os.path.normpath(p)) for p in paths])
    _feed(digest, kwargs)
    return digest.hexdigest()


def pack_outputs(paths: list[str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:  # no compression: embeddings barely shrink
        for index, path in enumerate(paths):
            if not os.path.exists(path):
                raise FileNotFoundError(f"nsml.cache: the function did not write {path!r}")
            tar.add(path, arcname=f"{index}/{os.path.basename(os.path.normpath(path))}")
    return buffer.getvalue()


def restore_outputs(archive: Path, paths: list[str]) -> None:
    """Unpack next to the first output (same file system), then move each into place."""
    near = Path(paths[0]).resolve().parent
    near.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".nsml-cache-", dir=near) as scratch:
        unpack(archive, Path(scratch))
        for index, path in enumerate(paths):
            source = Path(scratch) / str(index) / os.path.basename(os.path.normpath(path))
            target = Path(path)
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(target))


def unpack(archive: Path, folder: Path) -> None:
    """Extract an entry into ``folder``, with the safety rules of tarfile's "data" filter.

    A hit sits between a session's start and its first training step, so the plain tars
    that :func:`pack_outputs` writes are not read through Python: each member's bytes are
    copied file to file inside the kernel (``copy_file_range``), straight from the entry.
    Anything else (a compressed tar, links, sparse files) goes through ``extractall``.
    """
    try:
        tar = tarfile.open(archive, mode="r:")
    except tarfile.ReadError:  # compressed
        with tarfile.open(archive, mode="r:*") as packed:
            packed.extractall(folder, filter="data")
        return
    with tar:
        members = tar.getmembers()
        if not all(m.isdir() or (m.isreg() and not m.issparse()) for m in members):
            tar.extractall(folder, filter="data")
            return
        with archive.open("rb") as source:
            for member in members:
                safe = tarfile.data_filter(member, str(folder))  # raises on a path leaving it
                target = folder / safe.name
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as out:
                    _copy_range(source, out, member.offset_data, member.size)


def _copy_range(source: BinaryIO, out: BinaryIO, offset: int, size: int) -> None:
    done = 0
    try:
        while done < size:
            copied = os.copy_file_range(source.fileno(), out.fileno(), size - done, offset + done)
            if copied == 0:
                raise tarfile.ReadError("the cache entry ends inside a file; it is damaged")
            done += copied
    except OSError:  # no copy_file_range between these file systems: read and write
        source.seek(offset + done)
        out.seek(done)
        while done < size:
            chunk = source.read(min(size - done, 1 << 20))
            if not chunk:
                raise tarfile.ReadError("the cache entry ends inside a file; it is damaged") from None
            out.write(chunk)
            done += len(chunk)


class PlatformCache:
    """On the platform: the server's store, shared by the owner's sessions.

    A runner on the server's host mounts the owner's entries read-only at ``shared``
    (``NSML_CACHE_DIR``): a hit is then read from there, and only counted over the API,
    in the background, so the script goes on at once. Elsewhere entries come over HTTP.
    """

    def __init__(self, api: Callable[[], Any], shared: Path | None = None) -> None:
        self.api = api
        self.shared = shared

    def fetch(self, key: str, target: Path) -> Path | None:
        """The entry's archive (shared, or streamed to ``target``); None when there is none."""
        if self.shared is not None:
            local = self.shared / f"{key}.tar"
            if local.is_file():
                # not a daemon: the count is sent before the script exits
                threading.Thread(target=self._count_hit, args=(key,), name="nsml-cache-hit").start()
                return local
        return target if self.api().download_cache(key, target) else None

    def _count_hit(self, key: str) -> None:
        try:
            self.api().record_cache_hit(key)
        except Exception as exc:  # the files are restored; only the statistics lose a hit
            print(f"[nsml] the cache hit was not counted: {exc}", file=sys.stderr, flush=True)

    def put(self, key: str, archive: bytes, function: str, dataset: str | None) -> None:
        self.api().put_cache(key, archive, function, dataset)


class LocalCache:
    """Off the platform: the same archives in a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def fetch(self, key: str, target: Path) -> Path | None:
        path = self.root / f"{key}.tar"
        return path if path.exists() else None

    def put(self, key: str, archive: bytes, function: str, dataset: str | None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{key}.{os.getpid()}.part"
        partial.write_bytes(archive)
        os.replace(partial, self.root / f"{key}.tar")
