"""Files of shared resources under ``NSML_HOME/shared/NAME/VERSION.tar.gz``.

The archive is kept as it was uploaded (checked first) and served byte for byte. Each
publish writes a new version file; the store's record says which one is current. A
reader opens the current file before streaming it, so a replace that deletes the old
file afterwards never cuts a download short (an open file outlives its name on POSIX).
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import BinaryIO

from nsml.artifacts.base import BadArchive


def inspect_archive(path: Path) -> tuple[int, int]:
    """(unpacked bytes, files) of a tar archive of plain files and folders inside it."""
    size = files = 0
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                name = member.name
                if name.startswith("/") or ".." in Path(name).parts:
                    raise BadArchive(f"the archive holds {name!r}, which is outside its folder")
                if member.isfile():
                    size += member.size
                    files += 1
                elif not member.isdir():
                    raise BadArchive(f"the archive holds {name!r}, which is not a plain file or folder")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BadArchive(f"the uploaded archive could not be read: {exc}") from exc
    if files == 0:
        raise BadArchive("the archive holds no files; publish a folder with at least one file")
    return size, files


class SharedFiles:
    """The version files under ``root``; the store hands in uploads and discards them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str, version: str) -> Path:
        return self.root / name / f"{version}.tar.gz"

    def put(self, name: str, version: str, upload: Path) -> tuple[int, int]:
        """Move a checked upload into place as ``version``; (unpacked bytes, files)."""
        size, files = inspect_archive(upload)
        target = self.path(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(upload, target)  # uploads/ and shared/ share NSML_HOME's file system
        return size, files

    def open(self, name: str, version: str) -> BinaryIO:
        """Raises FileNotFoundError when a replace or rm removed that version meanwhile."""
        return self.path(name, version).open("rb")

    def delete(self, name: str, version: str) -> None:
        self.path(name, version).unlink(missing_ok=True)
        try:
            (self.root / name).rmdir()
        except OSError:
            pass  # other versions still there (a concurrent publish), or already gone
