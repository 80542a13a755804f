"""``nsml admin backup`` of a live server and ``nsml admin restore`` into a fresh home:
sessions, metrics, checkpoints, scores and accounts come back; a restore never runs
beside a live server, over a platform, or from a damaged archive; only admins back up."""

from __future__ import annotations

import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import PASSWORD, Platform, client_platform, second_user, train_rule_session
from nsml.backups import BackupError, restore
from nsml.client.api import ApiClient
from nsml.names import parse_session
from nsml.server.services.backup import remove_backup, write_backup
from nsml.server.settings import ServerSettings
from nsml.store import open_store


@pytest.fixture(scope="module")
def backed_up(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A backup of a platform holding a scored submission and a second account."""
    session = train_rule_session(platform, "demo_kin", "kin")
    platform.nsml("submit", session, "best")
    platform.nsml("admin", "user", "add", "keeper", "--password-stdin", input=PASSWORD + "\n")
    # what a session could leave among the files: a link to the server's own secrets
    os.symlink(platform.home / "server.json", platform.home / "sessions" / "planted-link")
    archive = tmp_path_factory.mktemp("backup") / "platform.tar"
    summary = platform.json("admin", "backup", str(archive))
    assert summary["database"] == "sqlite" and summary["size_bytes"] == archive.stat().st_size
    yield archive, session


def test_a_restored_home_serves_what_was_backed_up(
    platform: Platform, backed_up: tuple[Path, str], tmp_path: Path
) -> None:
    archive, session = backed_up
    restored = client_platform(tmp_path, "restored")
    try:
        result = restored.json("admin", "restore", str(archive))
        assert result["home"] == str(restored.home)
        assert restored.session(session)["status"] == "exited"
        assert [c["name"] for c in restored.json("model", "ls", session)] == ["best"]
        assert _metrics(restored, session) == _metrics(platform, session) != []
        original = platform.json("board", "demo_kin")["rows"]
        assert restored.json("board", "demo_kin")["rows"] == original and original
        url = restored.server_info()["url"]
        keeper = {"name": "keeper", "password": PASSWORD}
        login = httpx.post(f"{url}/api/v1/auth/login", json=keeper, timeout=60)
        assert login.status_code == 200, login.text
        # a second restore would overwrite the platform now there: refused
        restored.stop_server()
        again = restored.nsml("admin", "restore", str(archive), check=False)
        assert again.returncode == 1 and "already holds a platform" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1
    finally:
        restored.stop_server()


def _metrics(platform: Platform, session: str) -> list[tuple[str, int, float | None]]:
    info = platform.server_info()
    with ApiClient(info["url"], info["token"]) as api:
        return [(m.key, m.step, m.value) for m in api.list_metrics(parse_session(session))]


def test_the_archive_holds_no_link_and_no_secret(platform: Platform, backed_up: tuple[Path, str]) -> None:
    archive, _ = backed_up
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert all(m.isfile() or m.isdir() for m in members)
    assert not any(m.name.endswith(("planted-link", "server.json")) for m in members)
    assert platform.server_info()["token"].encode() not in archive.read_bytes()


def test_restore_refuses_a_live_server_and_a_damaged_archive(
    platform: Platform, backed_up: tuple[Path, str], tmp_path: Path
) -> None:
    archive, _ = backed_up
    live = platform.nsml("admin", "restore", str(archive), check=False)
    assert live.returncode == 1 and "stop it first" in live.stderr and "nsml server stop" in live.stderr
    damaged = tmp_path / "damaged.tar"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside some file
    damaged.write_bytes(bytes(data))
    fresh = client_platform(tmp_path, "fresh")
    refused = fresh.nsml("admin", "restore", str(damaged), check=False)
    assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "damaged" in refused.stderr or "not a readable" in refused.stderr
    assert not (fresh.home / "nsml.db").exists()


def test_only_admins_back_up(platform: Platform, tmp_path: Path) -> None:
    participant = second_user(platform, "nosy", tmp_path)
    refused = participant.nsml("admin", "backup", str(tmp_path / "stolen.tar"), check=False)
    assert refused.returncode == 1 and "only admins may back up the server" in refused.stderr
    assert not (tmp_path / "stolen.tar").exists() and not (tmp_path / "stolen.tar.part").exists()


def test_a_postgresql_database_round_trips_through_pg_dump(postgres_url: str, tmp_path: Path) -> None:
    """The server's side on PostgreSQL: ``pg_dump`` into the archive, ``pg_restore`` into
    an empty database, and a database that is not empty is refused in one line."""
    source, target = _new_database(postgres_url), _new_database(postgres_url)
    store = open_store(source)
    store.create_account("alice", "user", "participant", "hash-of-alice")
    store.close()
    (tmp_path / "home" / "checkpoints").mkdir(parents=True)
    (tmp_path / "home" / "checkpoints" / "model.tar.gz").write_bytes(b"weights")
    archive = write_backup(ServerSettings(home=tmp_path / "home", db_url=source))
    try:
        with pytest.raises(BackupError, match="PostgreSQL database; pass --db"):
            restore(archive, tmp_path / "fresh")
        restore(archive, tmp_path / "fresh", target)
        restored = open_store(target)
        assert restored.get_user("alice").password_hash == "hash-of-alice"
        restored.close()
        assert (tmp_path / "fresh" / "checkpoints" / "model.tar.gz").read_bytes() == b"weights"
        with pytest.raises(BackupError, match="^pg_restore failed: .*; restore into an empty database$"):
            restore(archive, tmp_path / "again", target)
    finally:
        remove_backup(archive)


def _new_database(base_url: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"b{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base_url.replace("/nsml?", f"/{name}?")
