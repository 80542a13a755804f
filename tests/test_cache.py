"""nsml.cache: computed once, restored by later sessions, safe under a double compute."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from conftest import Platform
from nsml.client.api import ApiClient
from nsml.sdk.caching import pack_outputs, unpack

# The preprocessing writes a vocabulary and a folder; --sleep widens the race window.
SCRIPT = """
    import argparse, os, time, nsml
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep", type=float, default=0)
    parser.add_argument("--size", type=int, default=3)
    config = parser.parse_args()

    def build_vocab(output_path, size):
        print("COMPUTING", flush=True)
        time.sleep(config.sleep)
        with open(output_path[0], "w") as handle:
            handle.write("\\n".join(f"word{i}" for i in range(size)))
        os.makedirs(output_path[1], exist_ok=True)
        with open(os.path.join(output_path[1], "vectors.bin"), "wb") as handle:
            handle.write(bytes(range(size)) * 1000)

    nsml.cache(build_vocab, output_path=["vocab.txt", "embeddings"], size=config.size)
    words = open("vocab.txt").read().split()
    print("VOCAB", len(words), os.path.getsize("embeddings/vectors.bin"), flush=True)
"""


def _log(platform: Platform, name: str) -> str:
    assert platform.wait(name)["status"] == "exited", platform.nsml("logs", name).stdout
    return platform.nsml("logs", name).stdout


def test_second_session_restores_instead_of_computing(platform: Platform) -> None:
    folder = platform.project("cached", SCRIPT)
    first = _log(platform, platform.run(folder, "demo_kin", "--size 5"))
    assert "COMPUTING" in first and "cache miss" in first and "VOCAB 5 5000" in first
    second = _log(platform, platform.run(folder, "demo_kin", "--size 5"))
    assert "COMPUTING" not in second and "cache hit" in second and "VOCAB 5 5000" in second
    # other arguments, or another dataset, mean another result
    other = _log(platform, platform.run(folder, "demo_kin", "--size 6"))
    assert "COMPUTING" in other and "VOCAB 6 6000" in other
    movie = _log(platform, platform.run(folder, "demo_movie", "--size 5"))
    assert "COMPUTING" in movie
    # an edited function is another function: its old results are not reused
    edited = platform.project("cached_v2", SCRIPT.replace("range(size)))", "range(size))) # v2"))
    changed = _log(platform, platform.run(edited, "demo_kin", "--size 5"))
    assert "COMPUTING" in changed and "cache miss" in changed

    entries = platform.json("cache", "ls")
    assert len(entries) == 4
    assert {e["function"] for e in entries} == {"build_vocab"}
    hit = next(e for e in entries if e["hits"] == 1)
    assert hit["size_bytes"] > 5000 and hit["dataset"] == "demo_kin"
    assert "build_vocab" in platform.nsml("cache", "ls").stdout


def test_concurrent_double_compute_stores_one_result(platform: Platform, tmp_path: Path) -> None:
    platform.nsml("cache", "rm", "--all", "-y")
    folder = platform.project("racing", SCRIPT)
    names = [
        platform.run(folder, "demo_kin", "--size 7 --sleep 6") for _ in range(2)
    ]  # both start within 6 s
    logs = [_log(platform, name) for name in names]
    assert all("COMPUTING" in log and "VOCAB 7 7000" in log for log in logs), logs
    [entry] = platform.json("cache", "ls")
    assert entry["size_bytes"] > 7000
    third = _log(platform, platform.run(folder, "demo_kin", "--size 7"))
    assert "cache hit" in third and "VOCAB 7 7000" in third

    # a runner on another machine has no mount: the same entry comes over the API
    info = platform.server_info()
    with ApiClient(info["url"], info["token"]) as api:
        assert api.download_cache(entry["key"], tmp_path / "entry.tar")
        assert not api.download_cache("f" * 64, tmp_path / "missing.tar")
    unpack(tmp_path / "entry.tar", tmp_path / "entry")
    assert (tmp_path / "entry" / "1" / "embeddings" / "vectors.bin").stat().st_size == 7000
    [counted] = platform.json("cache", "ls")
    assert counted["hits"] == 2  # the mounted hit and the download

    freed = platform.nsml("cache", "rm", entry["key"][:10], "-y")
    assert "Freed 1 entries" in freed.stdout
    assert platform.json("cache", "ls") == []
    missing = platform.nsml("cache", "rm", "ffff", "-y", check=False)
    assert missing.returncode == 1 and "matches 0 cache entries" in missing.stderr


def test_path_arguments_are_keyed_by_what_they_hold(tmp_path: Path) -> None:
    from nsml.sdk.caching import cache_key

    def fn(output_path: list[str], corpus: Path) -> None: ...

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("first version")
    before = cache_key(fn, ["out"], {"corpus": corpus})
    assert cache_key(fn, ["out"], {"corpus": tmp_path / "corpus.txt"}) == before
    corpus.write_text("second version")
    assert cache_key(fn, ["out"], {"corpus": corpus}) != before
    folder = tmp_path / "texts"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.txt").write_text("x")
    in_folder = cache_key(fn, ["out"], {"corpus": folder})
    (folder / "a" / "1.txt").write_text("y")
    assert cache_key(fn, ["out"], {"corpus": folder}) != in_folder


def test_cache_works_off_the_platform(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(textwrap.dedent(SCRIPT))
    env = {"PATH": "/usr/bin:/bin"}
    runs = [
        subprocess.run(
            [sys.executable, "main.py", "--size", "4"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for _ in range(2)
    ]
    assert "COMPUTING" in runs[0].stdout and "COMPUTING" not in runs[1].stdout
    assert all("VOCAB 4 4000" in r.stdout for r in runs)
    assert len(list((tmp_path / "nsml_local" / "cache").glob("*.tar"))) == 1


# A hit that checks what it got: the entries are visible read-only, the restored file is
# the session's own copy, and the session's changes never reach the stored entry.
TAMPER = """
    import os, nsml

    def make_words(output_path):
        print("COMPUTING", flush=True)
        with open(output_path[0], "w") as handle:
            handle.write("original")

    nsml.cache(make_words, output_path=["words.txt"])
    print("CONTENT", open("words.txt").read(), flush=True)
    shared = os.environ.get("NSML_CACHE_DIR")
    entries = sorted(os.listdir(shared)) if shared else []
    print("ENTRIES", len(entries), flush=True)
    for entry in entries:
        try:
            with open(os.path.join(shared, entry), "r+b") as handle:
                handle.write(b"garbage")
            print("WROTE-ENTRY", flush=True)
        except OSError:
            print("ENTRY-READ-ONLY", flush=True)
    with open("words.txt", "a") as handle:  # the restored copy is the session's to change
        handle.write(" changed")
"""


def test_hit_reads_a_read_only_view_of_the_entries(platform: Platform) -> None:
    if shutil.which("bwrap") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but bubblewrap is not installed; `make install` installs it")
        pytest.skip("bubblewrap (bwrap) is not installed: sessions see the entries unprotected")
    platform.nsml("cache", "rm", "--all", "-y")
    folder = platform.project("tamper", TAMPER)
    first = _log(platform, platform.run(folder, "demo_kin"))
    assert "COMPUTING" in first and "CONTENT original" in first
    for _ in range(2):  # the second hit sees the entry exactly as the first computed it
        hit = _log(platform, platform.run(folder, "demo_kin"))
        assert "cache hit" in hit and "COMPUTING" not in hit and "CONTENT original" in hit
        assert "ENTRIES 1" in hit and "ENTRY-READ-ONLY" in hit and "WROTE-ENTRY" not in hit
    [entry] = platform.json("cache", "ls")
    assert entry["hits"] == 2  # hits read from the mount are still counted by the server


def test_unpack_copies_plain_tars_and_refuses_escaping_names(tmp_path: Path) -> None:
    source = tmp_path / "out"
    (source / "nested").mkdir(parents=True)
    payload = bytes(range(256)) * 4099  # not a multiple of the tar block size
    (source / "nested" / "vectors.bin").write_bytes(payload)
    (tmp_path / "words.txt").write_text("하나 둘 셋")
    archive = tmp_path / "entry.tar"
    archive.write_bytes(pack_outputs([str(tmp_path / "words.txt"), str(source)]))
    unpack(archive, tmp_path / "plain")
    assert (tmp_path / "plain" / "0" / "words.txt").read_text() == "하나 둘 셋"
    assert (tmp_path / "plain" / "1" / "out" / "nested" / "vectors.bin").read_bytes() == payload

    packed = tmp_path / "entry.tar.gz"  # entries written gzip'd still restore
    with tarfile.open(packed, "w:gz") as tar:
        tar.add(tmp_path / "words.txt", arcname="0/words.txt")
    unpack(packed, tmp_path / "gz")
    assert (tmp_path / "gz" / "0" / "words.txt").read_text() == "하나 둘 셋"

    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        tar.add(tmp_path / "words.txt", arcname="../escaped.txt")
    with pytest.raises(tarfile.FilterError):
        unpack(evil, tmp_path / "evil")
    assert not (tmp_path / "escaped.txt").exists()
