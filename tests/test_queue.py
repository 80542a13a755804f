"""The concurrency limit queues sessions; queued sessions can be stopped before they start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TRAIN_2018, Platform, running_platform


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "one_slot", NSML_MAX_CONCURRENT="1") as instance:
        yield instance


def test_sessions_over_the_limit_wait_in_the_queue(one_slot: Platform) -> None:
    folder = one_slot.project("queued", TRAIN_2018)
    first = one_slot.run(folder, args="--epochs 1000 --sleep 0.1")
    second = one_slot.run(folder, args="--epochs 1")
    one_slot.wait(first, ("running",))
    assert one_slot.session(second)["status"] == "queued"
    assert "Queued" in one_slot.nsml("ps").stdout

    third = one_slot.run(folder, args="--epochs 1")
    stopped = one_slot.nsml("stop", third)
    assert one_slot.session(third)["status"] == "stopped"
    assert "stopped before it started" in one_slot.session(third)["reason"]
    assert "stopped" in stopped.stdout

    one_slot.nsml("stop", first)
    assert one_slot.wait(second)["status"] == "exited"
    assert "epoch 0 done" in one_slot.nsml("logs", second).stdout
    assert one_slot.nsml("logs", third).stdout.strip() == "[nsml] session stopped before it started"


def test_queued_sessions_survive_a_server_restart(one_slot: Platform) -> None:
    folder = one_slot.project("restart", TRAIN_2018)
    blocker = one_slot.run(folder, args="--epochs 1000 --sleep 0.1")
    waiting = one_slot.run(folder, args="--epochs 1")
    one_slot.wait(blocker, ("running",))
    one_slot.nsml("server", "stop", "-y")
    assert one_slot.session(blocker)["status"] == "failed"  # this call restarted the server
    ended = one_slot.wait(waiting)
    assert ended["status"] == "exited", (ended, one_slot.nsml("logs", waiting).stdout)


def test_server_start_stop_status(one_slot: Platform, tmp_path: Path) -> None:
    one_slot.nsml("server", "stop")
    status = one_slot.nsml("server", "status", check=False)
    assert status.returncode == 3 and "No server running" in status.stdout
    started = one_slot.nsml("server", "start")
    assert "Server running at http://127.0.0.1:" in started.stdout
    assert one_slot.json("server", "status")["running"] is True
    assert "Server stopped." in one_slot.nsml("server", "stop").stdout
    assert one_slot.json("server", "status")["running"] is False


def test_server_stop_never_kills_a_stranger(one_slot: Platform) -> None:
    import json
    import subprocess

    one_slot.nsml("server", "stop")
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        stale = {"url": "http://127.0.0.1:9", "token": "x", "pid": stranger.pid}
        (one_slot.home / "server.json").write_text(json.dumps(stale))
        result = one_slot.nsml("server", "stop")
        assert "No server was running" in result.stdout
        assert stranger.poll() is None  # the reused pid was left alone
        assert not (one_slot.home / "server.json").exists()
    finally:
        stranger.kill()
        stranger.wait()
