"""What `nsml download` packs from a work dir: written files only, no link followed, bounded."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from nsml.artifacts.outputs import (
    BadOutputPath,
    OutputTooLarge,
    output_prefix,
    pack_outputs,
    shipped_manifest,
)


def _shipped(tmp_path: Path, files: dict[str, bytes]) -> Path:
    archive = tmp_path / "code.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return archive


def _pack(work: Path, archive: Path, prefix: str = "", limit: int = 1 << 20) -> dict[str, bytes]:
    out = io.BytesIO()
    pack_outputs(work, shipped_manifest(archive), output_prefix(prefix), limit, out)
    out.seek(0)
    with tarfile.open(fileobj=out, mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    (folder / "out" / "deep").mkdir(parents=True)
    (folder / "__pycache__").mkdir()
    (folder / "main.py").write_bytes(b"print(1)\n")  # shipped, unchanged
    (folder / "conf.txt").write_bytes(b"changed\n")  # shipped, then changed (same size)
    (folder / "out" / "a.txt").write_bytes(b"a")
    (folder / "out" / "deep" / "b.txt").write_bytes(b"b")
    (folder / "__pycache__" / "main.pyc").write_bytes(b"x")
    secret = tmp_path / "secret.json"
    secret.write_text("the server's token")
    (folder / "out" / "leak").symlink_to(secret)
    (folder / "out" / "dirlink").symlink_to(tmp_path)
    os.mkfifo(folder / "out" / "fifo")
    return folder


def test_only_what_the_session_wrote_and_no_link(work: Path, tmp_path: Path) -> None:
    archive = _shipped(tmp_path, {"main.py": b"print(1)\n", "conf.txt": b"shipped\n"})
    packed = _pack(work, archive)
    assert packed == {"conf.txt": b"changed\n", "out/a.txt": b"a", "out/deep/b.txt": b"b"}


def test_a_prefix_picks_a_folder_or_a_file(work: Path, tmp_path: Path) -> None:
    archive = _shipped(tmp_path, {})
    assert set(_pack(work, archive, "out/deep")) == {"out/deep/b.txt"}
    assert set(_pack(work, archive, "./out/a.txt")) == {"out/a.txt"}
    assert _pack(work, archive, "out/leak") == {}
    for bad in ("/etc", "../x", "out/../../x"):
        with pytest.raises(BadOutputPath):
            output_prefix(bad)


def test_the_size_is_bounded(work: Path, tmp_path: Path) -> None:
    (work / "out" / "big.bin").write_bytes(b"0" * 4096)
    with pytest.raises(OutputTooLarge):
        _pack(work, _shipped(tmp_path, {}), limit=4000)
