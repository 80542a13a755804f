"""Two API servers on one database (a shared SQLite file and home): the second leaves the
first one's work alone, either serves and stops the other's sessions, and when one is
killed with SIGKILL the survivor takes over within the lease: running sessions and
evaluations fail with a reason naming the lost server, queued sessions run on it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import NSML, PASSWORD, ForegroundServer, Platform, client_platform, login
from nsml.server.services.server_leases import read_lease_settings
from nsml.server.settings import ServerSettings
from nsml.store import SessionStatus
from nsml.store.sql.store import SqlStore

LEASE_S = 6.0
TAKEOVER_S = LEASE_S + 6  # the lease, a tick, and a loaded machine's slack

# saves checkpoint 0, then prints a line every 0.1 s for --hold seconds; served for a
# submission, its infer takes 0.3 s a call
SCRIPT = """
    import argparse, os, time
    import nsml

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--hold", type=float, default=0)
    config = parser.parse_args()

    def save(dir_name, **kwargs):
        open(os.path.join(dir_name, "model.txt"), "w").write("1")

    def load(dir_name, **kwargs):
        pass

    def infer(raw_data, **kwargs):
        time.sleep(0.3)
        return [(0.5, 1) for _ in raw_data]

    nsml.bind(save=save, load=load, infer=infer)
    if config.pause:
        nsml.paused(scope=locals())
    nsml.save(0)
    end = time.time() + config.hold
    while time.time() < end:
        print("tick", flush=True)
        time.sleep(0.1)
    print("done", flush=True)
"""


def _env(server_id: str) -> dict[str, str]:
    return {
        "NSML_SERVER_ID": server_id,
        "NSML_LEASE_S": str(LEASE_S),
        "NSML_MAX_CONCURRENT": "1",
        "NSML_DEFAULT_DAILY_LIMIT": "0",
    }


def _client(base: Path, name: str, server: ForegroundServer) -> Platform:
    client = client_platform(base, name)
    client.env.update(NSML_SERVER_URL=server.url, NSML_TOKEN=server.token)
    return client


def _until(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout:g} s")
        time.sleep(0.2)


class Pair:
    """Server A, then server B on A's database and home; a client of each (the admin)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "home"
        self.a = ForegroundServer(self.home, "token-of-a", env=_env("srv-a"), log=base / "a.log")
        self.via_a = _client(base, "via-a", self.a)
        self.via_a.workdir = base / "work"
        self.via_a.workdir.mkdir()
        self.b: ForegroundServer | None = None
        self.via_b: Platform | None = None

    def start_b(self) -> Platform:
        self.b = ForegroundServer(self.home, "token-of-b", env=_env("srv-b"), log=self.base / "b.log")
        self.via_b = _client(self.base, "via-b", self.b)
        self.via_b.workdir = self.via_a.workdir
        return self.via_b


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    servers = Pair(tmp_path_factory.mktemp("leases"))
    try:
        yield servers
    finally:
        for server in (servers.a, servers.b):
            if server is not None:
                server.stop()


def _evaluating(submission: dict[str, Any]) -> bool:
    return bool(submission["status"] == "running" and submission["progress"])


def _servers(client: Platform) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in client.json("admin", "servers")}


def test_two_servers_share_the_work_and_the_survivor_takes_over_a_killed_one(pair: Pair) -> None:
    via_a = pair.via_a
    folder = via_a.project("leases", SCRIPT)
    first = via_a.run(folder, args="--hold 600")
    via_a.wait(first, ("running",))

    # starting B recovers only B's own work: A's running session goes on
    via_b = pair.start_b()
    servers = _servers(via_b)
    assert servers["srv-a"]["state"] == "live" and servers["srv-b"]["state"] == "live"
    assert servers["srv-b"]["this"] and not servers["srv-a"]["this"]
    assert servers["srv-a"]["sessions"] == 1
    assert via_b.session(first)["status"] == "running"

    # B serves A's session: its log, and a stop that A carries out
    _until("the log through B", lambda: "tick" in via_b.nsml("logs", first).stdout, 15)
    asked = time.monotonic()
    via_b.nsml("stop", first)
    assert via_b.session(first)["status"] == "stopped"
    assert time.monotonic() - asked < 30

    # A runs one session and queues another (one slot), and evaluates a submission of the
    # stopped one's checkpoint
    running = via_a.run(folder, args="--hold 600")
    via_a.wait(running, ("running",))
    queued = via_a.run(folder, args="--hold 0.5")
    assert via_a.session(queued)["status"] == "queued"
    submit = subprocess.Popen(
        [NSML, "submit", first, "0", "-b", "1"],
        env=via_a.env,
        cwd=via_a.workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        dataset = first.split("/")[1]
        submission = _until(
            "the evaluation's start",
            lambda: next(
                (
                    s
                    for s in via_b.json("submission", "ls", dataset)
                    if s["status"] == "running" and s["progress"]
                ),
                None,
            ),
            30,
        )

        pair.a.process.send_signal(signal.SIGKILL)
        pair.a.process.wait(timeout=10)
        killed = time.monotonic()
        failed = via_b.wait(running, ("failed",), timeout=TAKEOVER_S)
        assert time.monotonic() - killed < TAKEOVER_S
        assert "its server srv-a stopped answering" in failed["reason"]
        assert "srv-a stopped answering" in via_b.nsml("logs", running).stdout
        # the queued one ran on B
        assert via_b.wait(queued, timeout=30)["status"] == "exited"
        assert "done" in via_b.nsml("logs", queued).stdout
        # the evaluation died with A: failed, no score, not counted against the limits
        ended = next(s for s in via_b.json("submission", "ls", dataset) if s["id"] == submission["id"])
        assert ended["status"] == "failed" and "srv-a stopped answering" in ended["reason"]
        assert ended["public_score"] is None and ended["private_score"] is None
    finally:
        submit.kill()
        submit.wait()

    servers = _servers(via_b)
    assert servers["srv-a"]["state"] == "taken over" and servers["srv-a"]["taken_over_by"] == "srv-b"
    assert servers["srv-b"]["state"] == "live"
    table = via_b.nsml("admin", "servers").stdout
    assert "srv-a" in table and "taken over" in table and "srv-b (this)" in table


def test_only_admins_list_the_servers(pair: Pair) -> None:
    assert pair.b is not None and pair.via_b is not None
    pair.via_b.nsml("admin", "user", "add", "lease-bob", "--password-stdin", input=PASSWORD + "\n")
    bob = client_platform(pair.base, "lease-bob")
    assert pair.b.get("/admin/servers", login(bob, pair.b.url, "lease-bob")).status_code == 403
    refused = bob.nsml("admin", "servers", "--json", check=False)
    assert refused.returncode != 0
    assert "only admins may list the servers" in refused.stderr + refused.stdout


def test_a_server_cannot_start_with_the_id_of_a_live_one(pair: Pair) -> None:
    assert pair.b is not None
    with pytest.raises(AssertionError) as refused:
        ForegroundServer(pair.home, "token-of-c", env=_env("srv-b"), log=pair.base / "c.log")
    assert "the server id srv-b is held by a live server" in str(refused.value)
    assert "Traceback" not in (pair.base / "c.log").read_text()  # one line, before serving
    assert _servers(pair.via_b)["srv-b"]["state"] == "live"  # type: ignore[arg-type]


def test_of_racing_survivors_one_takes_over_and_the_lost_server_learns_it(store: SqlStore) -> None:
    now = datetime.now(timezone.utc)
    store.register_server("lost", "http://lost", "host", 1, now - timedelta(seconds=30), 10)
    for server_id in ("s1", "s2", "s3", "s4"):
        store.register_server(server_id, f"http://{server_id}", "host", 1, now, 10)
    user = store.get_or_create_user("lease-alice")
    dataset = store.create_dataset("lease-kin", user.id, "accuracy", "", 10, 5, 100)
    running, queued, ended, other = (
        store.create_session(user.id, dataset.id, "main.py", [], "", 0, f"t{i}", driver=driver)
        for i, driver in enumerate(("lost", "lost", "lost", "s1"))
    )
    store.transition_session(running.id, SessionStatus.RUNNING, from_statuses=[SessionStatus.QUEUED], at=now)
    store.transition_session(ended.id, SessionStatus.EXITED, from_statuses=[SessionStatus.QUEUED], at=now)
    evaluated = store.create_submission(dataset, user.id, running, "0", 5, now, driver="lost")
    elsewhere = store.create_submission(dataset, user.id, other, "0", 5, now, driver="s1")
    active = (SessionStatus.QUEUED, SessionStatus.RUNNING)

    # a claim before the takeover gets nothing; then of four racing survivors one wins
    assert store.claim_sessions("lost", "s2", active) == []
    with ThreadPoolExecutor(max_workers=4) as pool:
        won = list(pool.map(lambda s: store.take_over_server("lost", s, now), ("s1", "s2", "s3", "s4")))
    assert won.count(True) == 1
    winner = ("s1", "s2", "s3", "s4")[won.index(True)]
    loser = next(s for s in ("s1", "s2", "s3", "s4") if s != winner)
    assert store.claim_sessions("lost", loser, active) == []
    claimed = store.claim_sessions("lost", winner, active)
    assert sorted(s.id for s in claimed) == sorted((running.id, queued.id))
    assert all(s.driver == winner for s in claimed)
    assert store.fail_driven_submissions("lost", winner, "lost", now) == 1
    assert store.get_submission(evaluated.id).status == "failed"
    assert store.get_submission(evaluated.id).inputs_sent_at is None
    assert store.get_submission(elsewhere.id).status == "queued"
    assert store.get_session_by_id(other.id).driver == "s1"

    # the lost server (it only stalled) cannot renew, nor end what the winner now drives
    assert store.renew_lease("lost", now, 10) is False
    late = store.transition_session(
        running.id, SessionStatus.EXITED, from_statuses=active, at=now, driver="lost"
    )
    assert late is None and store.get_session_by_id(running.id).status is SessionStatus.RUNNING
    # a live lease is not taken over; a restart under the same id clears the takeover
    assert store.take_over_server(winner, loser, now) is False
    store.register_server("lost", "http://lost", "host", 2, now, 10)
    assert store.get_server("lost").state(now) == "live"
    assert store.renew_lease("lost", now, 10) is True
    assert store.claim_sessions("lost", winner, active) == []


def test_a_stop_asked_anywhere_reaches_the_driver_once(store: SqlStore) -> None:
    now = datetime.now(timezone.utc)
    user = store.get_or_create_user("lease-carol")
    dataset = store.create_dataset("lease-movie", user.id, "mse", "", 10, 5, 100)
    session = store.create_session(user.id, dataset.id, "main.py", [], "", 0, "tok", driver="a")
    assert store.request_session_stop(session.id, now) is True
    assert store.take_stop_requests("b") == []
    assert store.take_stop_requests("a") == [session.id]
    assert store.take_stop_requests("a") == []
    store.transition_session(session.id, SessionStatus.STOPPED, from_statuses=[SessionStatus.QUEUED], at=now)
    assert store.request_session_stop(session.id, now) is False  # ended: nothing to ask


def test_a_bad_lease_setting_stops_the_server_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "NSML_HOME": str(tmp_path / "home"), "NSML_LEASE_S": "1"}
    result = subprocess.run(
        [NSML, "server", "start", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: NSML_LEASE_S must be a number of seconds from 2 to 3600, not '1'"
    )
    settings = ServerSettings(home=tmp_path)
    for bad in ("a b", "-lead", "x" * 129, "../up"):
        with pytest.raises(SystemExit, match="NSML_SERVER_ID must be 1-128 letters, digits"):
            read_lease_settings(settings, {"NSML_SERVER_ID": bad})
    read_lease_settings(settings, {"NSML_SERVER_ID": "api-1.eu:8000", "NSML_LEASE_S": "7.5"})
    assert (settings.server_id, settings.lease_s) == ("api-1.eu:8000", 7.5)
