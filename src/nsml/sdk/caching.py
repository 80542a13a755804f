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
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
    elif hasattr(value, "tobytes") and hasattr(value, "dtype"):  # numpy arrays and the like
        _feed(digest, f"{value.dtype}{getattr(value, 'shape', '')}")
        _feed(digest, value.tobytes())
    else:
        _feed(digest, pickle.dumps(value, protocol=4))


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
        with tarfile.open(archive, mode="r:*") as tar:
            tar.extractall(scratch, filter="data")
        for index, path in enumerate(paths):
            source = Path(scratch) / str(index) / os.path.basename(os.path.normpath(path))
            target = Path(path)
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(source), str(target))


class PlatformCache:
    """On the platform: the server's store, shared by the owner's sessions."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def fetch(self, key: str, target: Path) -> Path | None:
        """The entry's archive, streamed to ``target``; None when there is none."""
        return target if self.api.download_cache(key, target) else None

    def put(self, key: str, archive: bytes, function: str, dataset: str | None) -> None:
        self.api.put_cache(key, archive, function, dataset)


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
