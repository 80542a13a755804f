"""The measured hot spots of a busy server stay fixed: Nagle's delay on kept-alive
connections, reads queued behind SQLite's write lock, unbounded password hashing in a
login burst, and long polls of a submission that wait out their whole timeout."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from conftest import PASSWORD, Platform, train_rule_session
from nsml.server import passwords
from nsml.server.__main__ import listening_socket
from nsml.server.services.submission_changes import SubmissionChanges, wait_for_change
from nsml.store import open_store


def test_accepted_connections_send_without_nagle_delay() -> None:
    """asyncio sets TCP_NODELAY on an accepted connection only when the listening socket
    is IPPROTO_TCP; without it each request after the first on a kept-alive connection
    waited ~44 ms for the client's delayed ACK."""

    async def accept_one() -> list[int]:
        sock = listening_socket("127.0.0.1", 0)
        seen: list[int] = []

        async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        await reader.read()  # the server closes after looking
        writer.close()
        server.close()
        await server.wait_closed()
        return seen

    [nodelay] = asyncio.run(asyncio.wait_for(accept_one(), timeout=10))
    assert nodelay != 0


def test_a_read_goes_on_while_another_connection_holds_the_write_lock(tmp_path: Path) -> None:
    """Reads are deferred transactions: under WAL they read beside a writer instead of
    queueing for its lock (the store's busy timeout would have held this one 60 s)."""
    database = tmp_path / "nsml.db"
    store = open_store(f"sqlite:///{database}")
    store.get_or_create_user("alice")
    writer = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE users SET name = name")
        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(store.get_user, "alice")
            try:
                assert read.result(timeout=10).name == "alice"
                assert [u.name for u in pool.submit(store.list_users).result(timeout=10)] == ["alice"]
            finally:
                writer.execute("ROLLBACK")  # lets a read that did block finish, so the pool ends
        assert store.get_or_create_user("bob").name == "bob"  # writes still work afterwards
    finally:
        writer.close()
        store.close()


class _CountingHasher:
    """Argon2 with a count of the hashes running at once."""

    def __init__(self) -> None:
        self.real = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        self.lock = threading.Lock()
        self.running = self.peak = 0

    def _counted(self, work: Any, *args: str) -> Any:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.02)  # long enough for the threads to overlap
            return work(*args)
        finally:
            with self.lock:
                self.running -= 1

    def hash(self, password: str) -> str:
        return str(self._counted(self.real.hash, password))

    def verify(self, password_hash: str, password: str) -> bool:
        return bool(self._counted(self.real.verify, password_hash, password))


def test_concurrent_password_checks_never_run_more_hashes_than_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _CountingHasher()
    monkeypatch.setattr(passwords, "_hasher", counting)
    stored = counting.real.hash(PASSWORD)
    with ThreadPoolExecutor(4 * passwords.HASH_SLOTS + 4) as pool:
        results = list(pool.map(lambda _: passwords.verify_password(stored, PASSWORD), range(40)))
    assert results == [True] * 40
    assert 1 <= counting.peak <= passwords.HASH_SLOTS


def test_a_check_that_finds_no_slot_is_refused_with_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "SLOT_WAIT_S", 0.05)
    taken = 0
    try:
        while passwords._slots.acquire(blocking=False):
            taken += 1
        with pytest.raises(passwords.PasswordCheckBusy) as refused:
            passwords.verify_password(None, PASSWORD)
    finally:
        for _ in range(taken):
            passwords._slots.release()
    assert taken == passwords.HASH_SLOTS
    assert refused.value.status_code == 503 and int(refused.value.headers["Retry-After"]) >= 1
    assert "\n" not in refused.value.detail and "try again" in refused.value.detail


def test_a_waiter_wakes_when_the_submission_changes_not_at_the_next_check() -> None:
    class Store:
        def update_submission(self, submission_id: int, **values: Any) -> Any:
            return values

    changes = SubmissionChanges(Store())  # type: ignore[arg-type]

    async def wait_while_another_thread_scores() -> float:
        with changes.listening(7) as changed:
            started = time.monotonic()
            threading.Timer(0.05, lambda: changes.update(7, status="scored")).start()
            await wait_for_change(changed, 30)
            return time.monotonic() - started

    assert asyncio.run(wait_while_another_thread_scores()) < 0.5  # the recheck would be at 1 s


def _api(platform: Platform) -> tuple[str, dict[str, str]]:
    """The API's root and the server's own (operator's) token."""
    info = platform.server_info()
    return info["url"] + "/api/v1", {"Authorization": f"Bearer {info['token']}"}


def test_waiting_on_a_scored_submission_answers_at_once(platform: Platform) -> None:
    session = train_rule_session(platform, "demo_kin", "kin")
    platform.nsml("submit", session, "best")
    [submission] = platform.json("board", "demo_kin", "--private")["submissions"]
    api, headers = _api(platform)
    started = time.monotonic()
    reply = httpx.get(f"{api}/submissions/{submission['id']}?wait=20", headers=headers, timeout=30)
    elapsed = time.monotonic() - started
    assert reply.status_code == 200 and reply.json()["status"] == "scored"
    assert elapsed < 5, f"waited {elapsed:.1f} s on a submission already scored"


def test_a_login_burst_succeeds_and_old_hashes_are_renewed(platform: Platform) -> None:
    """Eight people log in at once (one account per person: parallel logins to one
    account count as guesses); one account's hash is from before, with argon2-cffi's
    default 64 MiB parameters, and is stored anew with today's at its login."""
    api, _ = _api(platform)
    admin = {"Authorization": f"Bearer {platform.server_info()['token']}"}
    names = [f"burst{i}" for i in range(8)]
    for name in names:
        added = httpx.post(
            f"{api}/admin/users", headers=admin, json={"name": name, "password": PASSWORD}, timeout=60
        )
        assert added.status_code == 201, added.text
    store = open_store(f"sqlite:///{platform.home / 'nsml.db'}")
    try:
        store.update_user("burst0", password_hash=PasswordHasher().hash(PASSWORD))

        def login(name: str) -> int:
            reply = httpx.post(f"{api}/auth/login", json={"name": name, "password": PASSWORD}, timeout=60)
            return reply.status_code

        with ThreadPoolExecutor(len(names)) as pool:
            codes = list(pool.map(login, names))
        assert codes == [200] * len(names)
        renewed = store.get_user("burst0").password_hash or ""
        assert renewed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert passwords.verify_password(renewed, PASSWORD)
    finally:
        store.close()


def test_a_scripts_first_use_of_the_sdk_loads_no_http_stack() -> None:
    """``import nsml; nsml.report`` is what every session pays before its first line; the
    HTTP client (httpx, pydantic, ~0.3 s) loads only when a report is first sent."""
    heavy = ("httpx", "pydantic", "anyio", "rich", "click", "sqlalchemy", "numpy")
    loaded = "{m.split('.')[0] for m in sys.modules}"
    code = f"import sys, nsml; nsml.report; print(sorted({loaded} & {set(heavy)!r}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_kept_alive_connection_the_server_closed_is_asked_again_once() -> None:
    """A server closes an idle kept-alive connection after its timeout; a GET sent on it
    at that moment gets no answer, and the client asks again on a new connection rather
    than telling the user the server cannot be reached."""
    from nsml.client.http import ApiError, HttpClient

    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    requests: list[bytes] = []

    def serve() -> None:
        first, _ = listener.accept()  # answers once, then drops the next request unanswered
        requests.append(first.recv(65536))
        first.sendall(answer)
        requests.append(first.recv(65536))
        first.close()
        for _ in range(2):  # the retried GET, then the refused POST's own connection
            conn, _ = listener.accept()
            requests.append(conn.recv(65536))
            if requests[-1].startswith(b"GET"):
                conn.sendall(answer)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = HttpClient(f"http://127.0.0.1:{listener.getsockname()[1]}", "token")
    try:
        assert client._call("GET", "/first").json() == {}
        assert client._call("GET", "/second").json() == {}  # dropped once, asked again
        with pytest.raises(ApiError):  # a POST might have been acted on: not sent twice
            client._call("POST", "/third")
    finally:
        client.close()
        listener.close()
        thread.join(timeout=10)
    paths = [r.split(b" ", 2)[1] for r in requests]
    assert paths == [b"/api/v1/first", b"/api/v1/second", b"/api/v1/second", b"/api/v1/third"]
