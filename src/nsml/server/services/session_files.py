"""A session's files for its owner: the source as shipped (``nsml pull``, ``nsml diff``)
and what the session wrote (``nsml download``), and its memo (``nsml memo``).

The shipped source is the archive the server stored when the session was created, never
the work dir, which the session may have changed. Outputs are read from the work dir
through :mod:`nsml.artifacts.outputs`, which follows no link and reads plain files only,
into an unnamed temporary file that is streamed and then gone.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from nsml.artifacts import ArtifactStore
from nsml.artifacts.outputs import (
    BadOutputPath,
    OutputTooLarge,
    output_prefix,
    pack_outputs,
    shipped_manifest,
)
from nsml.artifacts.safe_io import UnsafeFile
from nsml.server.errors import BadRequest, NotFoundError, TooLarge
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, Session

CHUNK = 1 << 20
MAX_MEMO_CHARS = 1000


class SessionFiles:
    def __init__(self, store: AbstractStore, artifacts: ArtifactStore, settings: ServerSettings) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings

    def set_memo(self, session: Session, text: str) -> Session:
        """One line of text, so ``ps`` stays one row per session."""
        memo = " ".join(text.split())
        if len(memo) > MAX_MEMO_CHARS:
            raise BadRequest(f"a memo holds at most {MAX_MEMO_CHARS} characters, not {len(memo)}")
        return self.store.set_session_description(session.id, memo)

    def source(self, session: Session) -> Iterator[bytes]:
        """The stored ``code.tar.gz``, byte for byte as it was shipped."""
        try:
            handle = self.artifacts.open_source(session.id)
        except (FileNotFoundError, UnsafeFile):
            raise NotFoundError(f"the shipped source of {session.name} is not stored any more") from None
        return _chunks(handle)

    def outputs(self, session: Session, path: str) -> tuple[Iterator[bytes], int]:
        """The files the session wrote (under ``path``) as tar.gz, and how many there are."""
        try:
            prefix = output_prefix(path)
        except BadOutputPath as exc:
            raise BadRequest(str(exc)) from None
        work = self.artifacts.local_work_dir(session.id)
        if not work.is_dir() or work.is_symlink():
            raise NotFoundError(f"the work dir of {session.name} is not there any more")
        try:
            shipped = shipped_manifest(self.artifacts.local_source_archive(session.id))
        except (FileNotFoundError, UnsafeFile, tarfile.TarError):
            shipped = {}  # then every file counts as written by the session
        limit = self.settings.max_download_bytes
        out = self.artifacts.scratch_file()
        try:
            packed = pack_outputs(work, shipped, prefix, limit, out)
        except OutputTooLarge:
            out.close()
            raise TooLarge(
                f"the outputs of {session.name} are over {self.settings.max_download_mb} MiB, "
                "what one download carries; name a file or folder inside its work dir"
            ) from None
        except BaseException:
            out.close()
            raise
        if prefix and packed.files == 0:
            out.close()
            raise NotFoundError(f"{session.name} wrote no file under {path!r}")
        out.seek(0)
        return _chunks(out), packed.files


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk
