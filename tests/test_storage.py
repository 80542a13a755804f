"""Uploads, quotas and unpack caps, attacked against a real server.

Refused uploads leave nothing in ``uploads/``; checkpoints, cache entries and uploads of
an account stay within its quota; a small archive that unpacks to gigabytes is refused
before anything is written.
"""

from __future__ import annotations

import os
import socket
import tarfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import Platform, running_platform, targz

MIB = 1024 * 1024
QUOTA_MB = 3
KEY = "ab" * 32

SAVES = """
    import argparse, os, nsml
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", default="first")
    parser.add_argument("--mb", type=float, default=2)
    config, _ = parser.parse_known_args()

    def save(dir_name, **kwargs):
        with open(os.path.join(dir_name, "weights.bin"), "wb") as handle:
            handle.write(os.urandom(int(config.mb * 1024 * 1024)))

    nsml.bind(save=save, load=lambda d, **k: None, infer=lambda data, **k: [(0.5, 1) for _ in data])
    for name in config.names.split(","):
        try:
            nsml.save(name)
            print("SAVED", name, flush=True)
        except Exception as exc:
            print("REFUSED", name, exc, flush=True)
"""


@pytest.fixture(scope="module")
def quota_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "storage", NSML_STORAGE_QUOTA_MB=str(QUOTA_MB)) as instance:
        instance.nsml("ps")  # starts the server
        yield instance


def _client(platform: Platform, token: str | None = None) -> httpx.Client:
    info = platform.server_info()
    return httpx.Client(
        base_url=info["url"] + "/api/v1",
        headers={"Authorization": f"Bearer {token or info['token']}"},
        timeout=60,
    )


def _send(client: httpx.Client, method: str, path: str, body: bytes, **kwargs: object) -> int:
    """The status; 0 when the server closed the connection before it could answer."""
    try:
        return client.request(method, path, content=body, **kwargs).status_code  # type: ignore[arg-type]
    except httpx.TransportError:
        return 0


def _leftovers(platform: Platform) -> list[str]:
    return sorted(p.name for p in (platform.home / "uploads").iterdir())


def _wait_empty(platform: Platform, timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while _leftovers(platform) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _leftovers(platform)


def _bomb(size: int) -> bytes:
    """A tar.gz of one file of ``size`` zero bytes: ~1/1000 of it on the wire."""
    info = tarfile.TarInfo("main.py")
    info.size = size
    gzip = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT))]
    zero = bytes(MIB)
    for _ in range(size // MIB):
        parts.append(gzip.compress(zero))
    parts.append(gzip.compress(bytes(-size % 512 + 1024)))
    parts.append(gzip.flush())
    return b"".join(parts)


def test_refused_uploads_leave_nothing_behind(quota_platform: Platform) -> None:
    platform = quota_platform
    session = platform.run(platform.project("uploads_trivial", "print('hello')\n"))
    body = os.urandom(2 * MIB)
    with _client(platform) as api, _client(platform, "not-a-token") as stranger:
        assert _send(stranger, "POST", "/uploads", body) == 401
        assert _send(api, "PUT", "/cache/not-a-key", body) == 400
        assert _send(api, "PUT", f"/cache/{KEY}", body) == 400  # read, then refused: not a tar
        # a person's token may not save a session's checkpoint: refused before the body
        assert _send(api, "PUT", f"/sessions/{session}/checkpoints/x", body) == 401
        assert _send(api, "POST", "/uploads", os.urandom(4 * MIB)) == 413  # over the quota

        def trickle() -> Iterator[bytes]:  # no Content-Length: refused while it arrives
            for _ in range(8):
                yield os.urandom(MIB // 2)

        assert _send(api, "POST", "/uploads", trickle()) == 413  # type: ignore[arg-type]
        upload = api.post("/uploads", content=targz({"main.py": b"print(1)\n"}))
        assert upload.status_code == 201
        created = api.post(
            "/sessions", json={"dataset": "no_such_dataset", "code_upload": upload.json()["upload_id"]}
        )
        assert created.status_code == 404, created.text  # refused: its upload goes too
        small = targz({"vectors.txt": b"a 1\n"})
        assert api.put("/shared/upload_vectors", content=small).status_code == 201
        assert _send(api, "PUT", "/shared/upload_vectors", body) == 409  # exists: --replace first
        assert _send(api, "PUT", "/shared/bad..name", body) == 400
        api.delete("/shared/upload_vectors")
    _disconnect_midway(platform, 3 * MIB, MIB)
    assert _wait_empty(platform) == []


def _status_before_body(platform: Platform, method: str, path: str, token: str | None = None) -> int:
    """Send only the headers of a 2 MiB upload: a server that checks the request before
    reading its body answers at once; one that reads first would wait for the body."""
    info = platform.server_info()
    url = urlsplit(info["url"])
    with socket.create_connection((url.hostname, url.port), timeout=5) as raw:
        raw.sendall(
            f"{method} /api/v1{path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {token or info['token']}\r\nContent-Length: {2 * MIB}\r\n\r\n".encode()
        )
        status_line = raw.recv(4096).split(b"\r\n", 1)[0]  # socket.timeout: it waited for the body
    return int(status_line.split()[1])


def test_uploads_are_refused_before_their_body_is_read(quota_platform: Platform) -> None:
    platform = quota_platform
    session = platform.run(platform.project("uploads_headers", "print('hello')\n"))
    assert _status_before_body(platform, "POST", "/uploads", "not-a-token") == 401
    assert _status_before_body(platform, "PUT", "/cache/not-a-key") == 400
    assert _status_before_body(platform, "PUT", f"/sessions/{session}/checkpoints/x") == 401
    assert _status_before_body(platform, "PUT", "/shared/bad..name") == 400
    assert _leftovers(platform) == []


def _disconnect_midway(platform: Platform, declared: int, sent: int) -> None:
    info = platform.server_info()
    url = urlsplit(info["url"])
    with socket.create_connection((url.hostname, url.port)) as raw:
        raw.sendall(
            f"POST /api/v1/uploads HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: Bearer {info['token']}\r\nContent-Length: {declared}\r\n\r\n".encode()
        )
        raw.sendall(os.urandom(sent))
        time.sleep(0.5)


def test_checkpoints_stay_within_the_quota(quota_platform: Platform) -> None:
    platform = quota_platform
    folder = platform.project("quota_saves", SAVES)
    name = platform.run(folder, args="--names first,second,first --mb 2")
    assert platform.wait(name, timeout=120)["status"] == "exited", platform.nsml("logs", name).stdout
    log = platform.nsml("logs", name).stdout
    lines = [line for line in log.splitlines() if line.startswith(("SAVED", "REFUSED"))]
    assert lines[0] == "SAVED first" and lines[2] == "SAVED first", log  # the same name reuses its space
    assert lines[1].startswith("REFUSED second storage quota exceeded: root uses "), log
    assert f"of {QUOTA_MB}.0 MiB" in lines[1] and "nsml model rm" in lines[1] and "nsml cache rm" in lines[1]
    assert [c["name"] for c in platform.json("model", "ls", name)] == ["first"]
    assert not list((platform.home / "checkpoints").rglob(".tmp-*"))
    me = platform.json("whoami")
    assert me["storage_quota_bytes"] == QUOTA_MB * MIB
    assert 2 * MIB <= me["storage_used_bytes"] < QUOTA_MB * MIB
    assert f"of {QUOTA_MB} MiB used" in platform.nsml("whoami").stdout
    with _client(platform) as api:  # a cache entry that does not fit either
        entry = targz({"big.bin": os.urandom(2 * MIB)})
        refused = api.put(f"/cache/{KEY}", content=entry)
        assert refused.status_code == 413 and "storage quota exceeded" in refused.json()["detail"]
    assert _wait_empty(platform) == []
    assert "removed" in platform.nsml("model", "rm", name, "first", "-y").stdout  # frees its space
    assert platform.json("model", "ls", name) == []
    assert platform.json("whoami")["storage_used_bytes"] < MIB
    assert not list((platform.home / "checkpoints").rglob("first"))
    with _client(platform) as api:
        assert api.put(f"/cache/{KEY}", content=entry).status_code == 201  # fits now
        assert api.delete(f"/cache/{KEY}").status_code == 204
    missing = platform.nsml("model", "rm", name, "first", "-y", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
    platform.nsml("rm", name, "-y")


def test_a_decompression_bomb_is_refused_before_it_fills_the_disk(quota_platform: Platform) -> None:
    platform = quota_platform
    bomb = _bomb(1536 * MIB)
    assert len(bomb) < 2 * MIB
    with _client(platform) as api:
        upload = api.post("/uploads", content=bomb)
        assert upload.status_code == 201, upload.text
        started = time.monotonic()
        created = api.post(
            "/sessions", json={"dataset": "demo_kin", "code_upload": upload.json()["upload_id"]}
        )
        assert time.monotonic() - started < 30
    assert created.status_code == 413, created.text
    detail = created.json()["detail"]
    assert detail.startswith("storage quota exceeded") and "\n" not in detail
    assert not [p for p in (platform.home / "sessions").iterdir() if p.name.startswith(".")]
    assert _wait_empty(platform) == []


def test_the_source_cap_holds_without_a_quota(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_platform(tmp_path_factory, "source_cap", NSML_MAX_SOURCE_MB="64") as platform:
        platform.nsml("ps")
        with _client(platform) as api:
            upload = api.post("/uploads", content=_bomb(256 * MIB))
            created = api.post(
                "/sessions", json={"dataset": "demo_kin", "code_upload": upload.json()["upload_id"]}
            )
        assert created.status_code == 400, created.text
        assert "unpacks to more than 64 MiB" in created.json()["detail"]
        assert not [p for p in (platform.home / "sessions").iterdir() if p.name.startswith(".")]
        assert _leftovers(platform) == []
        me = platform.json("whoami")
        assert me["storage_quota_bytes"] == 0 and "no quota" in platform.nsml("whoami").stdout
        # an account's own quota, over the server's default
        user = me["name"]
        assert "1 MiB" in platform.nsml("admin", "user", "quota", user, "1").stdout
        assert platform.json("whoami")["storage_quota_bytes"] == MIB
        with _client(platform) as api:
            refused = api.post("/uploads", content=os.urandom(2 * MIB))
        assert refused.status_code == 413 and "of 1.0 MiB" in refused.json()["detail"]
        platform.nsml("admin", "user", "quota", user, "--default")
        assert platform.json("whoami")["storage_quota_bytes"] == 0
        assert _leftovers(platform) == []


def test_unpack_caps_in_the_artifact_store(tmp_path: Path) -> None:
    from nsml.artifacts import FileArtifactStore, UnpackTooLarge

    store = FileArtifactStore(tmp_path / "home", max_unpacked_bytes=8 * MIB)
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(_bomb(64 * MIB))
    with pytest.raises(UnpackTooLarge) as hard:
        store.unpack_archive(archive, tmp_path / "out", max_bytes=None)
    assert hard.value.limit == 8 * MIB
    with pytest.raises(UnpackTooLarge) as quota:
        store.unpack_archive(archive, tmp_path / "out", max_bytes=MIB)
    assert quota.value.limit == MIB
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "bomb.tar.gz",
        "home",
    ]
