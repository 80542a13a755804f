"""Publishing a folder as a shared resource, for any program that talks to the platform.

``nsml shared push`` and ``python -m kortext pretrain --publish`` both publish through here,
so a library such as kortext reaches the server through the client and never imports the
``nsml`` command line. Every expected failure comes out as one :class:`PublishFailed`
whose message is meant for the user, whatever layer it started in.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from nsml.client.api import ApiError
from nsml.client.connection import ConnectionFailed, connect
from nsml.names import InvalidName, validate_name
from nsml.sizes import human_size

StatusFn = Callable[[str], AbstractContextManager[Any]]


class PublishFailed(Exception):
    """The folder was not published; the message says why, in the user's terms."""


def _quiet(_message: str) -> AbstractContextManager[Any]:
    return nullcontext()


def pack_folder(folder: Path, archive: Path) -> int:
    """tar.gz of the folder's files (relative names); how many files went in."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    if not files:
        raise PublishFailed(f"{folder} holds no files; nothing to publish")
    with tarfile.open(archive, mode="w:gz", compresslevel=1) as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return len(files)


def publish_folder(
    name: str, folder: Path, description: str, replace: bool, status: StatusFn = _quiet
) -> dict[str, Any]:
    """Pack FOLDER and publish it as NAME on the server the ``nsml`` command would use.

    ``status`` shows what is going on (the CLI passes a spinner); the resource as the server
    describes it comes back.
    """
    try:
        validate_name("shared resource", name)
        if not folder.is_dir():
            raise PublishFailed(f"{folder} is not a folder; give the folder to publish")
        with tempfile.TemporaryDirectory(prefix="nsml-shared-") as scratch:
            archive = Path(scratch) / "resource.tar.gz"
            with status(f"packing {folder}"):
                pack_folder(folder, archive)
            size = human_size(archive.stat().st_size)
            with connect(start=True).client() as api, status(f"uploading {size}"):
                return api.put_shared(name, archive, description, replace)
    except ApiError as error:
        raise PublishFailed(error.detail) from None
    except (ConnectionFailed, InvalidName) as error:
        raise PublishFailed(str(error)) from None
