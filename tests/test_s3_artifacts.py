"""Artifacts in an S3-protocol bucket: the store's round trips, its refusals, and two servers
with their own NSML_HOME sharing one bucket and one database.

The bucket is served by moto's server mode on 127.0.0.1: pure Python, installed with pip
(the ``test`` extra), and it speaks the S3 REST API over real HTTP, so boto3 goes through
the same code path as against Amazon S3 or MinIO (which would need a binary download).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import TRAIN_2018, Platform, client_platform, free_port, running_platform, targz

try:
    import boto3
    from moto.server import ThreadedMotoServer
except ImportError as missing:  # pragma: no cover - depends on the environment
    if os.environ.get("CI") == "true":
        raise RuntimeError(
            f"CI=true but {missing.name} is missing; `make test` installs the test extra"
        ) from None
    pytest.skip(
        f"{missing.name} is not installed (pip install 'opennsml[test]' brings boto3 and moto)",
        allow_module_level=True,
    )

from nsml.artifacts.bucket import BadObjectKey, Bucket, BucketLocation, ObjectStoreError
from nsml.artifacts.object_store import ObjectStoreArtifacts, open_bucket
from nsml.runners.base import RunSpec
from nsml.runners.process import ProcessLauncher

BUCKET = "nsml-artifacts"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 on a free port of 127.0.0.1, with the bucket made; credentials in the env."""
    saved = {key: os.environ.get(key) for key in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
    try:
        yield url
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def pair(endpoint: str, tmp_path: Path) -> Iterator[tuple[ObjectStoreArtifacts, ObjectStoreArtifacts]]:
    """Two stores, each with an empty home of its own, on one prefix of the bucket."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    stores = [
        ObjectStoreArtifacts(
            tmp_path / name, open_bucket(f"s3://{BUCKET}/{prefix}", endpoint), mirror_interval_s=0.1
        )
        for name in ("a", "b")
    ]
    yield stores[0], stores[1]
    for store in stores:
        store.close()


def upload(store: ObjectStoreArtifacts, data: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    upload_id, _ = asyncio.run(store.receive_upload(chunks(), len(data) + 1))
    return upload_id


def stream_files(chunks: Iterator[bytes]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:gz") as tar:
        for member in tar:
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name] = extracted.read()
    return files


def objects(store: ObjectStoreArtifacts, *parts: str) -> list[str]:
    return list(store.bucket.keys_under(*parts))


# the store on its own ------------------------------------------------------------------------
def test_checkpoints_are_seen_by_every_server_and_deleted_for_all(pair: Any) -> None:
    a, b = pair
    size = a.put_checkpoint(7, "3", upload(a, targz({"model.json": b'{"w": 3}'})))
    assert size == len(b'{"w": 3}')
    assert (b.local_checkpoint_dir(7, "3") / "model.json").read_bytes() == b'{"w": 3}'
    assert stream_files(b.read_checkpoint(7, "3")) == {"model.json": b'{"w": 3}'}
    assert not b.local_checkpoint_dir(7, "missing").exists()
    a.put_checkpoint(7, "3", upload(a, targz({"model.json": b'{"w": 4}'})))  # the same name saved again
    assert (b.local_checkpoint_dir(7, "3") / "model.json").read_bytes() == b'{"w": 4}'
    a.delete_checkpoint(7, "3")
    assert objects(a, "checkpoints", "7") == []
    assert not a.local_checkpoint_dir(7, "3").exists()


def test_a_checkpoint_the_bucket_refused_is_not_kept(endpoint: str, tmp_path: Path) -> None:
    nowhere = Bucket(BucketLocation.parse("s3://no-such-bucket/x"), endpoint)
    store = ObjectStoreArtifacts(tmp_path / "home", nowhere)
    try:
        with pytest.raises(ObjectStoreError, match="no-such-bucket") as refused:
            store.put_checkpoint(1, "0", upload(store, targz({"m": b"1"})))
        assert "\n" not in str(refused.value)
        assert not store.local_checkpoint_dir(1, "0").exists()  # nothing a service could record
    finally:
        store.close()


def test_dataset_versions_follow_the_bucket(pair: Any) -> None:
    a, b = pair
    for version, text in ((1, b"first"), (2, b"second")):
        with a.staged_dataset() as staged:
            (staged / "train").mkdir(parents=True)
            (staged / "train" / "train_data").write_bytes(text)
            a.keep_dataset(staged, "cup", version)
        assert (b.local_train_dir("cup") / "train_data").read_bytes() == text
    with a.staged_dataset() as staged, pytest.raises(FileExistsError):
        staged.mkdir()
        b.keep_dataset(staged, "cup", 2)  # taken, though not on b's disk before
    a.restore_dataset_version("cup", 1)
    assert (b.local_dataset_dir("cup") / "train" / "train_data").read_bytes() == b"first"
    assert stream_files(b.read_train_split("cup")) == {"train_data": b"first"}
    with b.staged_dataset() as staged:
        (staged / "train").mkdir(parents=True)
        (staged / "train" / "train_data").write_bytes(b"third")
        b.keep_dataset(staged, "cup", 2)
    a.prune_dataset_versions("cup")
    assert [key.rsplit("/", 1)[1] for key in objects(a, "datasets", "cup", "versions")] == ["2.tar.gz"]
    assert (a.local_train_dir("cup") / "train_data").read_bytes() == b"third"
    a.delete_dataset("cup")
    assert objects(a, "datasets", "cup") == []


def test_a_phase_test_set_added_through_one_server_scores_on_the_other(pair: Any) -> None:
    """A competition phase's hidden test set lives in the bucket beside the versions: the
    other server fetches it, and a replaced dataset keeps it."""
    a, b = pair
    with a.staged_dataset() as staged:
        (staged / "train").mkdir(parents=True)
        (staged / "train" / "train_data").write_bytes(b"v1")
        a.keep_dataset(staged, "cup", 1)
    with a.staged_dataset() as staged:
        (staged / "test").mkdir(parents=True)
        (staged / "test" / "test_label").write_bytes(b"1\n0\n")
        a.keep_phase_test(staged, "cup", "final")
    assert (b.local_phase_dir("cup", "final") / "test" / "test_label").read_bytes() == b"1\n0\n"
    with b.staged_dataset() as staged, pytest.raises(FileExistsError):
        (staged / "test").mkdir(parents=True)
        b.keep_phase_test(staged, "cup", "final")  # taken, whoever asks
    with b.staged_dataset() as staged:
        (staged / "train").mkdir(parents=True)
        (staged / "train" / "train_data").write_bytes(b"v2")
        b.keep_dataset(staged, "cup", 2)
    assert (a.local_train_dir("cup") / "train_data").read_bytes() == b"v2"
    assert (a.local_phase_dir("cup", "final") / "test" / "test_label").read_bytes() == b"1\n0\n"
    a.delete_dataset("cup")
    assert objects(a, "datasets", "cup") == []


def test_sources_and_logs_reach_the_other_server(pair: Any) -> None:
    a, b = pair
    with a.staged_source(1 << 20, upload(a, targz({"main.py": b"print(1)\n"}))) as staged:
        a.keep_source(staged, 5)
    with b.staged_source(1 << 20, from_session=5) as forked:  # a fork through the other server
        assert (forked / "main.py").read_bytes() == b"print(1)\n"
    with b.open_source(5) as shipped:
        assert shipped.read() == a.local_source_archive(5).read_bytes()
    with a.local_log_path(5).open("a") as runner_output:  # what a runner writes, unannounced
        runner_output.write("epoch 0\n")
    deadline = time.monotonic() + 10
    while b.read_log(5, 0) != b"epoch 0\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b.read_log(5, 0) == b"epoch 0\n"
    a.append_log(5, "[nsml] session exited (exit code 0)")  # mirrored at once
    assert b.read_log(5, 6).decode() == "0\n[nsml] session exited (exit code 0)\n"
    assert b.read_log(5, 10_000) == b""
    a.append_scalars(5, [("loss", 0, 0.5, time.time())])
    a.close()  # a last pass: the metric files too
    assert any("/tensorboard/" in key for key in objects(a, "sessions", "5"))
    a.delete_session(5)
    assert objects(a, "sessions", "5") == []


def test_an_ended_session_is_in_the_bucket_before_its_end_is_recorded(endpoint: str, tmp_path: Path) -> None:
    """No periodic pass runs here: what the session wrote reaches the bucket when it ends,
    so a server reading ``exited`` also reads the whole log and every metric file."""
    store = ObjectStoreArtifacts(
        tmp_path / "home",
        open_bucket(f"s3://{BUCKET}/t{uuid.uuid4().hex[:8]}", endpoint),
        mirror_interval_s=3600,
    )
    try:
        with store.staged_source(1 << 20, upload(store, targz({"main.py": b"x = 1\n"}))) as staged:
            store.keep_source(staged, 3)
        with store.local_log_path(3).open("a") as runner_output:
            runner_output.write("last line\n")
        store.append_scalars(3, [("loss", 0, 0.5, time.time())])
        assert not any("/tensorboard/" in key for key in objects(store, "sessions", "3"))
        store.settle_session(3)
        keys = objects(store, "sessions", "3")
        assert any("/tensorboard/" in key for key in keys)
        assert store.bucket.get(store.bucket.key("sessions", "3", "log.txt")) == b"last line\n"
    finally:
        store.close()


def test_a_log_swapped_for_a_link_is_never_uploaded(pair: Any, tmp_path: Path) -> None:
    a, b = pair
    with a.staged_source(1 << 20, upload(a, targz({"main.py": b"x = 1\n"}))) as staged:
        a.keep_source(staged, 9)
    secret = tmp_path / "server-secret.txt"
    secret.write_text("admin token\n")
    log = a.local_log_path(9)
    log.unlink()
    log.symlink_to(secret)  # what a session that can write there would try
    a.append_log(9, "[nsml] session failed")
    a.close()
    assert b"admin token" not in b.read_log(9, 0)
    assert a.bucket.get(a.bucket.key("sessions", "9", "log.txt")) in (None, b"")


def test_cache_and_shared_resources_are_shared(pair: Any) -> None:
    a, b = pair
    key = "ab" * 32
    entry = targz({"features.npy": b"123"})
    assert a.put_cache("alice", key, upload(a, entry)) == (len(entry), True)
    assert b.cache_archive("alice", key).read_bytes() == entry
    assert b.put_cache("alice", key, upload(b, targz({"other": b"4"}))) == (len(entry), False)
    assert list((b.home / "uploads").iterdir()) == []  # the refused upload is discarded
    b.delete_cache("alice", key)
    assert not a.bucket.size(a.bucket.key("cache", "alice", f"{key}.tar"))

    assert a.put_shared("glove", "v1", upload(a, entry)) == (3, 1)
    with b.open_shared("glove", "v1") as archive:
        assert archive.read() == entry
    a.delete_shared("glove", "v1")
    (b.home / "shared" / "glove" / "v1.tar.gz").unlink()
    with pytest.raises(FileNotFoundError):
        b.open_shared("glove", "v1")


@pytest.mark.parametrize("name", ["../escape", "..", "a/../../b", "", ".hidden", "x\0y"])
def test_names_cannot_leave_the_prefix(pair: Any, name: str) -> None:
    a, _ = pair
    with pytest.raises(BadObjectKey):
        a.bucket.key("checkpoints", "1", name)
    with pytest.raises(BadObjectKey):
        a.cache_archive(name, "ab" * 32)
    with pytest.raises(BadObjectKey):
        a.delete_checkpoint(1, name)


def test_an_unsandboxed_session_is_not_handed_the_bucket_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "server-secret")
    spec = RunSpec(1, "alice/cup/1", ["python", "main.py"], tmp_path, {}, tmp_path / "log.txt")
    _, env, _ = ProcessLauncher(sandboxed=False).command(spec, {})
    assert not any(key.startswith("AWS_") for key in env) and "server-secret" not in env.values()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("/var/artifacts", "must look like s3://BUCKET/PREFIX"),
        ("s3://UPPER/x", "is not a bucket name"),
        ("s3://ok-bucket/../up", "cannot name an object"),
    ],
)
def test_bad_locations_are_refused_in_one_line(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as refused:
        BucketLocation.parse(url)
    assert "\n" not in str(refused.value)


def test_a_server_whose_bucket_does_not_answer_does_not_start(endpoint: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "NSML_HOME": str(tmp_path),
        "NSML_ARTIFACTS": f"s3://{BUCKET}/x",
        "NSML_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nobody listens there
    }
    started = subprocess.run(
        [sys.executable, "-m", "nsml.server", "--port", "0", "--sandbox", "off"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    last = started.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the object store s3://nsml-artifacts/x") and "could not reach" in last
    assert "Traceback" not in started.stderr


# two servers, one bucket, one database --------------------------------------------------------
READS_DATASET = """
    import os, nsml
    with open(os.path.join(nsml.DATASET_PATH, "train", "train_data"), encoding="utf-8") as handle:
        print("read:", handle.read().strip(), flush=True)
"""


@pytest.fixture(scope="module")
def servers(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Platform]]:
    database = tmp_path_factory.mktemp("shared-db") / "nsml.db"
    env = {
        "NSML_DB": f"sqlite:///{database}",
        "NSML_ARTIFACTS": f"s3://{BUCKET}/platform",
        "NSML_S3_ENDPOINT_URL": endpoint,
        **CREDENTIALS,
    }
    with (
        running_platform(tmp_path_factory, "server-a", **env) as first,
        running_platform(tmp_path_factory, "server-b", **env) as second,
    ):
        yield first, second


def test_a_second_server_serves_the_first_ones_checkpoints(servers: tuple[Platform, Platform]) -> None:
    a, b = servers
    name = a.run(a.project("train", TRAIN_2018), "demo_kin", "--epochs 2")
    assert a.wait(name)["status"] == "exited"
    assert not b.home.exists()  # b starts with nothing of its own
    assert [c["name"] for c in b.json("model", "ls", name)] == ["0", "1"]
    assert b.json("submit", name, "1")["status"] == "scored"  # evaluated by b, from the bucket
    assert list((b.home / "checkpoints").rglob("model.json"))  # fetched there to be evaluated


def test_a_dataset_pushed_through_one_server_is_read_by_a_session_of_the_other(
    servers: tuple[Platform, Platform], tmp_path: Path
) -> None:
    a, b = servers
    folder = tmp_path / "shared_cup"
    (folder / "train").mkdir(parents=True)
    (folder / "test").mkdir()
    (folder / "train" / "train_data").write_text("from server a\n")
    (folder / "train" / "train_label").write_text("1\n")
    (folder / "test" / "test_data").write_text("q\n")
    (folder / "test" / "test_label").write_text("1\n")
    a.nsml("dataset", "push", "shared_cup", str(folder), "--metric", "accuracy")
    name = b.run(b.project("reader", READS_DATASET), "shared_cup")
    assert b.wait(name)["status"] == "exited"
    assert "read: from server a" in a.nsml("logs", name).stdout  # b's log, read through a


def test_a_backup_holds_the_bucket_and_restores_it_into_an_empty_prefix(
    servers: tuple[Platform, Platform], endpoint: str, tmp_path: Path
) -> None:
    """The servers' own folders hold only what each fetched: the backup carries every
    object, and a restore puts them into the bucket the restored server reads."""
    a, b = servers
    name = a.run(a.project("train", TRAIN_2018), "demo_kin", "--epochs 2")
    assert a.wait(name)["status"] == "exited"
    archive = tmp_path / "platform.tar"
    summary = b.json("admin", "backup", str(archive))  # b never ran it: only the bucket has it all
    source = open_bucket(f"s3://{BUCKET}/platform", endpoint)
    backed_up = {source.relative(key) for key in source.keys_under()}
    assert summary["counts"]["bucket"] == len(backed_up) > 0
    with tarfile.open(archive) as tar:
        members = {m.name.removeprefix("bucket/") for m in tar if m.isfile() and m.name.startswith("bucket/")}
    assert members == backed_up

    restored = client_platform(tmp_path, "restored")
    refused = restored.nsml("admin", "restore", str(archive), check=False)  # no bucket named
    assert refused.returncode == 1 and "NSML_ARTIFACTS" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    restored.env.update(
        NSML_ARTIFACTS=f"s3://{BUCKET}/restored", NSML_S3_ENDPOINT_URL=endpoint, **CREDENTIALS
    )
    try:
        restored.json("admin", "restore", str(archive))
        target = open_bucket(f"s3://{BUCKET}/restored", endpoint)
        assert {target.relative(key) for key in target.keys_under()} == backed_up
        shutil.rmtree(restored.home / "checkpoints")  # what it scores with must come from the bucket
        assert [c["name"] for c in restored.json("model", "ls", name)] == ["0", "1"]
        assert restored.json("submit", name, "1")["status"] == "scored"
        restored.stop_server()
        again = client_platform(tmp_path, "again")  # a fresh home, but the prefix holds objects now
        again.env.update(restored.env, NSML_HOME=str(again.home))
        twice = again.nsml("admin", "restore", str(archive), check=False)
        assert twice.returncode == 1 and "already holds objects" in twice.stderr
        assert not (again.home / "nsml.db").exists()
    finally:
        restored.stop_server()


def test_a_bucket_gone_away_is_a_one_line_error_and_nothing_is_recorded(
    servers: tuple[Platform, Platform], endpoint: str, tmp_path: Path
) -> None:
    a, _ = servers  # the module's last test: the bucket is emptied and removed
    bucket = boto3.resource("s3", endpoint_url=endpoint).Bucket(BUCKET)
    bucket.objects.all().delete()
    bucket.delete()
    folder = tmp_path / "lost_cup"
    for split in ("train", "test"):
        (folder / split).mkdir(parents=True)
        (folder / split / f"{split}_data").write_text("q\n")
        (folder / split / f"{split}_label").write_text("1\n")
    refused = a.nsml("dataset", "push", "lost_cup", str(folder), "--metric", "accuracy", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "NoSuchBucket" in refused.stderr
    assert "Internal" not in refused.stderr
    assert "lost_cup" not in [d["name"] for d in a.json("dataset", "ls")]
