"""What `nsml run` ships from the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsml.client.shipping import ShippingError, collect_source


def _names(root: Path) -> set[str]:
    return {name for _, name in collect_source(root)}


def test_skips_dot_files_gitignored_paths_and_caches(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print(1)")
    (tmp_path / ".env").write_text("SECRET=1")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    (tmp_path / ".gitignore").write_text("data/\n*.ckpt\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(b"0" * 10)
    (tmp_path / "model.ckpt").write_text("weights")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "nsml_local" / "checkpoints" / "1").mkdir(parents=True)
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "util.py").write_text("")
    (tmp_path / "pkg" / ".gitignore").write_text("secret.txt\n")
    (tmp_path / "pkg" / "secret.txt").write_text("no")
    (tmp_path / "requirements.txt").write_text("")
    assert _names(tmp_path) == {"main.py", "pkg/sub/util.py", "requirements.txt"}


def test_nsmlignore_is_honoured_like_gitignore(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print(1)")
    (tmp_path / ".gitignore").write_text("*.log\n")
    (tmp_path / ".nsmlignore").write_text("notebooks/\nraw_*.csv\n!raw_keep.csv\n")
    (tmp_path / "run.log").write_text("x")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "explore.ipynb").write_text("{}")
    (tmp_path / "raw_1.csv").write_text("1")
    (tmp_path / "raw_keep.csv").write_text("1")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / ".nsmlignore").write_text("/local.py\n")
    (tmp_path / "pkg" / "local.py").write_text("")
    (tmp_path / "pkg" / "model.py").write_text("")
    assert _names(tmp_path) == {"main.py", "raw_keep.csv", "pkg/model.py"}


def test_a_file_over_the_cap_is_named(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("")
    (tmp_path / "weights.bin").write_bytes(b"0" * (2 * 1024 * 1024))
    with pytest.raises(ShippingError, match=r"weights\.bin is 2\.0 MiB, over the 1 MiB"):
        collect_source(tmp_path, max_file_mb=1)


def test_a_total_over_the_cap_names_the_file_that_crossed_it(tmp_path: Path) -> None:
    for index in range(3):
        (tmp_path / f"part{index}.bin").write_bytes(b"0" * (600 * 1024))
    with pytest.raises(ShippingError, match=r"over 1 MiB when part1\.bin is added"):
        collect_source(tmp_path, max_file_mb=1, max_total_mb=1)


def test_cli_reports_the_offender_and_ships_nothing(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = platform.project("too_big", "print('hi')\n")
    (folder / "huge.npy").write_bytes(b"0" * (21 * 1024 * 1024))
    before = len(platform.json("ps", "-a"))
    result = platform.nsml("run", "-d", "demo_kin", cwd=folder, check=False)
    assert result.returncode == 1
    assert "huge.npy" in result.stderr and ".gitignore" in result.stderr
    assert len(platform.json("ps", "-a")) == before


def test_archives_that_unpack_too_large_are_refused(tmp_path: Path) -> None:
    import gzip
    import io
    import tarfile

    from nsml.artifacts import BadArchive, FileArtifactStore

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 8 * 1024 * 1024
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    bomb = tmp_path / "bomb.tar.gz"
    bomb.write_bytes(gzip.compress(buffer.getvalue()))
    assert bomb.stat().st_size < 64 * 1024  # small on the wire
    store = FileArtifactStore(tmp_path / "home")
    with pytest.raises(BadArchive, match="unpacks to more than 1 MiB"):
        store.unpack_archive(bomb, tmp_path / "out", max_bytes=1024 * 1024)
    assert not (tmp_path / "out").exists()
    store.unpack_archive(bomb, tmp_path / "ok", max_bytes=16 * 1024 * 1024)
    assert (tmp_path / "ok" / "zeros.bin").stat().st_size == 8 * 1024 * 1024


READER = """
import sys, time
path, stop = sys.argv[1], sys.argv[2]
reads = misses = 0
import os
while not os.path.exists(stop):
    try:
        open(path).read()
        reads += 1
    except FileNotFoundError:
        misses += 1
print(reads, misses)
"""


def test_saving_a_checkpoint_again_replaces_it_without_a_gap(tmp_path: Path) -> None:
    import io
    import subprocess
    import sys
    import tarfile

    from nsml.artifacts.filesystem import FileArtifactStore, exchange

    store = FileArtifactStore(tmp_path / "home")

    def save(version: int) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo("weights.txt")
            data = str(version).encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        upload_id = f"{version:032x}"  # what receive_upload makes: 32 hex digits
        upload = store.upload_path(upload_id)
        upload.parent.mkdir(parents=True, exist_ok=True)
        upload.write_bytes(buffer.getvalue())
        store.put_checkpoint(1, "best", upload_id)

    save(0)
    weights = store.checkpoint_dir(1, "best") / "weights.txt"
    stop = tmp_path / "stop"
    reader = subprocess.Popen(  # another process, as a session loading the checkpoint would be
        [sys.executable, "-c", READER, str(weights), str(stop)], stdout=subprocess.PIPE, text=True
    )
    try:
        for version in range(1, 400):
            save(version)
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=30)
    reads, misses = map(int, out.split())
    assert reads > 0 and misses == 0, (reads, misses)
    assert weights.read_text() == "399"
    assert [p.name for p in weights.parent.parent.iterdir()] == ["best"]  # no staging left behind
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("a")
    b.write_text("b")
    assert exchange(a, b) and (a.read_text(), b.read_text()) == ("b", "a")
