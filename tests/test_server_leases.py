"""Two API servers on one database (a shared SQLite file and home): the second leaves the
first one's work alone, either serves and stops the other's sessions, and when one is
killed with SIGKILL the survivor takes over within the lease: running sessions and
evaluations fail with a reason naming the lost server, queued sessions run on it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import NSML, PASSWORD, ForegroundServer, Platform, client_platform, login

LEASE_S = 4.0
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
    first = via_a.run(folder, args="--hold 60")
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
    running = via_a.run(folder, args="--hold 60")
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
    login(bob, pair.b.url, "lease-bob")
    refused = bob.nsml("admin", "servers", "--json", check=False)
    assert refused.returncode != 0
    assert "only admins may list the servers" in refused.stderr + refused.stdout
    assert pair.b.get("/admin/servers", login(bob, pair.b.url, "lease-bob")).status_code == 403


def test_a_server_cannot_start_with_the_id_of_a_live_one(pair: Pair) -> None:
    assert pair.b is not None
    with pytest.raises(AssertionError) as refused:
        ForegroundServer(pair.home, "token-of-c", env=_env("srv-b"), log=pair.base / "c.log")
    assert "the server id srv-b is held by a live server" in str(refused.value)
    assert _servers(pair.via_b)["srv-b"]["state"] == "live"  # type: ignore[arg-type]
