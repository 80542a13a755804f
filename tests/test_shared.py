"""Shared resources: an organiser publishes a folder once; any account's sessions read it."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import (
    PASSWORD,
    ForegroundServer,
    Platform,
    admin_platform,
    client_platform,
    login,
    require_shared_data,
)
from nsml.store import Conflict, NotFound
from nsml.store.sql.store import SqlStore

READER = """
    import os, nsml
    folder = nsml.shared("vocab")
    words = open(os.path.join(folder, "words.txt"), encoding="utf-8").read().split()
    nested = open(os.path.join(folder, "sub", "tag.txt")).read().strip()
    print("SHARED", nsml.IS_ON_NSML, len(words), words[0], nested, flush=True)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("shared")
    server = ForegroundServer(base / "server-home")
    try:
        admin = admin_platform(base, server)
        for name, role in (("olga", "organiser"), ("oleg", "organiser"), ("bob", "participant")):
            admin.nsml(
                "admin", "user", "add", name, "--role", role, "--password-stdin", input=PASSWORD + "\n"
            )
        clients = {name: client_platform(base, name) for name in ("olga", "oleg", "bob")}
        tokens = {name: login(client, server.url, name) for name, client in clients.items()}
        yield {"server": server, "base": base, "admin": admin, "clients": clients, "tokens": tokens}
    finally:
        for client in (clients if "clients" in locals() else {}).values():
            client.stop_server()
        server.stop()


def _folder(base: Path, tag: str, words: int) -> Path:
    folder = base / f"vocab-{tag}"
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "words.txt").write_text(" ".join(f"{tag}단어{i}" for i in range(words)), encoding="utf-8")
    (folder / "sub" / "tag.txt").write_text(tag)
    return folder


def _session_log(client: Platform, folder: Path) -> str:
    name = client.run(folder, "demo_kin")
    session = client.wait(name)
    log = client.nsml("logs", name).stdout
    assert session["status"] == "exited", log
    return log


def _download(server: ForegroundServer, token: str) -> tuple[str, dict[str, str]]:
    """(the archive's version header, {file: content}) of one full download."""
    response = httpx.get(
        server.url + "/api/v1/shared/vocab", headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
        files = {
            m.name: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar
            if m.isfile()
        }
    return response.headers["x-nsml-shared-version"], files


def test_organiser_publishes_and_a_participants_session_reads(world: dict[str, Any]) -> None:
    olga, bob = world["clients"]["olga"], world["clients"]["bob"]
    pushed = olga.json(
        "shared", "push", "vocab", str(_folder(world["base"], "v1", 50)), "--description", "words"
    )
    assert pushed["owner"] == "olga" and pushed["files"] == 2 and pushed["size_bytes"] > 50
    [listed] = bob.json("shared", "ls")
    assert (listed["name"], listed["owner"], listed["description"]) == ("vocab", "olga", "words")
    assert listed["size_bytes"] == pushed["size_bytes"] and listed["created_at"]
    assert "vocab" in bob.nsml("shared", "ls").stdout

    log = _session_log(bob, bob.project("reader", READER))  # the session's own token reads it
    assert "SHARED True 50 v1단어0 v1" in log and "restored to nsml_shared/vocab" in log

    taken = olga.nsml("shared", "push", "vocab", str(_folder(world["base"], "v1", 5)), check=False)
    assert taken.returncode == 1 and "exists" in taken.stderr and "--replace" in taken.stderr
    assert bob.json("shared", "ls")[0]["size_bytes"] == pushed["size_bytes"]


def test_participants_and_other_organisers_cannot_change_it(world: dict[str, Any]) -> None:
    bob, oleg = world["clients"]["bob"], world["clients"]["oleg"]
    folder = _folder(world["base"], "bob", 3)
    for args in (("push", "mine", str(folder)), ("push", "vocab", str(folder), "--replace"), ("rm", "vocab")):
        denied = bob.nsml("shared", *args, check=False)
        assert denied.returncode == 1, denied
        assert denied.stderr.count("\n") == 1 and "only organisers and admins" in denied.stderr
    other = oleg.nsml("shared", "push", "vocab", str(folder), "--replace", check=False)
    assert other.returncode == 1 and "published by olga" in other.stderr
    assert oleg.nsml("shared", "rm", "vocab", check=False).returncode == 1
    bad = world["clients"]["olga"].nsml("shared", "push", "../x", str(folder), check=False)
    assert bad.returncode == 1 and "invalid shared resource name" in bad.stderr
    assert [r["name"] for r in bob.json("shared", "ls")] == ["vocab"]


def test_replace_is_atomic_for_readers(world: dict[str, Any]) -> None:
    server, olga = world["server"], world["clients"]["olga"]
    token = world["tokens"]["bob"]
    old_version, old = _download(server, token)
    assert old["sub/tag.txt"] == "v1"
    seen: list[tuple[str, dict[str, str]]] = []
    done = threading.Event()

    def read_until_done() -> None:
        while not done.is_set():
            seen.append(_download(server, token))

    readers = [threading.Thread(target=read_until_done) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        replaced = olga.json("shared", "push", "vocab", str(_folder(world["base"], "v2", 2000)), "--replace")
    finally:
        done.set()
        for reader in readers:
            reader.join(timeout=60)
    assert replaced["files"] == 2 and replaced["version"] != old_version
    assert any(files["sub/tag.txt"] == "v1" for _, files in seen), "no download ran during the replace"
    for version, files in seen:  # every download is one whole version, never a mix
        tag = files["sub/tag.txt"]
        assert version == (old_version if tag == "v1" else replaced["version"])
        assert len(files["words.txt"].split()) == (50 if tag == "v1" else 2000)
        assert files["words.txt"].startswith(f"{tag}단어0")
    assert _download(server, token)[1]["sub/tag.txt"] == "v2"
    stored = list((server.home / "shared" / "vocab").iterdir())
    assert [p.name for p in stored] == [f"{replaced['version']}.tar.gz"]  # the old version is freed

    bob = world["clients"]["bob"]
    assert "SHARED True 2000 v2단어0 v2" in _session_log(bob, bob.project("reader", READER))


def test_pull_then_the_same_script_runs_off_the_platform(world: dict[str, Any], tmp_path: Path) -> None:
    bob = world["clients"]["bob"]
    bob.nsml("shared", "pull", "vocab", cwd=tmp_path)
    (tmp_path / "main.py").write_text(textwrap.dedent(READER))
    env = {k: v for k, v in bob.env.items() if not k.startswith("NSML_")}
    ran = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert ran.returncode == 0 and "SHARED False 2000 v2단어0 v2" in ran.stdout, ran.stderr
    missing = tmp_path / "other.py"
    missing.write_text("import nsml\nnsml.shared('nothing')\n")
    failed = subprocess.run(
        [sys.executable, str(missing)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert failed.returncode == 1 and "nsml shared pull nothing" in failed.stderr


def test_rm_frees_it_and_sessions_get_a_clear_error(world: dict[str, Any]) -> None:
    olga, bob, server = world["clients"]["olga"], world["clients"]["bob"], world["server"]
    assert "removed" in olga.nsml("shared", "rm", "vocab").stdout
    assert bob.json("shared", "ls") == []
    assert not (server.home / "shared" / "vocab").exists()
    again = olga.nsml("shared", "rm", "vocab", check=False)
    assert again.returncode == 1 and "no shared resource 'vocab'" in again.stderr
    name = bob.run(bob.project("reader", READER), "demo_kin")
    assert bob.wait(name)["status"] == "failed"
    assert "no shared resource 'vocab'" in bob.nsml("logs", name).stdout


def test_store_names_are_unique_and_replace_switches_versions(store: SqlStore) -> None:
    olga = store.get_or_create_user("olga")

    def create(index: int) -> str:
        try:
            store.put_shared("emb", olga.id, "d", 10, 1, f"v{index}", replace=False)
            return f"v{index}"
        except Conflict:
            return ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        winners = [v for v in pool.map(create, range(16)) if v]
    assert len(winners) == 1 and store.get_shared("emb").version == winners[0]
    resource, previous = store.put_shared("emb", olga.id, "new", 20, 2, "next", replace=True)
    assert previous == winners[0] and (resource.version, resource.size_bytes, resource.owner) == (
        "next",
        20,
        "olga",
    )
    assert resource.created_at <= resource.updated_at and [r.name for r in store.list_shared()] == ["emb"]
    removed = store.delete_shared("emb")
    assert removed is not None and removed.version == "next" and store.delete_shared("emb") is None
    with pytest.raises(NotFound):
        store.get_shared("emb")


KORTEXT_READER = """
    import numpy
    from kortext.embeddings import pretrained
    vectors = pretrained("nsmc_w2v")
    word = vectors.index_to_key[0]
    near = vectors.most_similar(word, topn=3)
    print("VECTORS", len(vectors.index_to_key), vectors.vector_size,
          isinstance(vectors.vectors, numpy.memmap), len(near), flush=True)
"""


def test_kortext_pretrain_publishes_and_a_session_loads_them(world: dict[str, Any], tmp_path: Path) -> None:
    nsmc = require_shared_data() / "nsmc" / "reviews.tsv.gz"
    olga, bob = world["clients"]["olga"], world["clients"]["bob"]
    env = {**olga.env, "KORTEXT_HOME": str(tmp_path / "kortext")}
    env.update(NSML_SERVER_URL=world["server"].url, NSML_TOKEN=world["tokens"]["olga"])
    command = [
        sys.executable, "-m", "kortext", "pretrain", "--corpus-path", str(nsmc), "--tokenizer", "kiwi",
        "--kind", "word2vec", "--limit", "3000", "--vector-size", "8", "--epochs", "1",
        "--publish", "nsmc_w2v", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    import json

    entry = json.loads(done.stdout)
    assert entry["published"]["name"] == "nsmc_w2v" and entry["vocabulary"] > 1000
    listed = {r["name"]: r for r in bob.json("shared", "ls")}["nsmc_w2v"]
    assert "word2vec nsmc (kiwi) dim=8" in listed["description"] and listed["files"] >= 3  # kv + .npy + info

    log = _session_log(bob, bob.project("kortext_reader", KORTEXT_READER))
    assert f"VECTORS {entry['vocabulary']} 8 True 3" in log

    refused = subprocess.run(
        [*command[:-3], "--publish", "again"],
        env={**env, "NSML_TOKEN": world["tokens"]["bob"]}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert refused.returncode == 1 and "only organisers and admins" in refused.stderr
