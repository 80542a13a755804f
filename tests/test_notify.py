"""Notifications and idle sessions, through the real CLI and server.

The webhook is a small HTTP server on 127.0.0.1 started by the test, so the POSTs the
platform sends are read exactly as an endpoint would get them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from conftest import Platform, free_port, running_platform
from nsml.server.webhooks import WebhookSender
from webhook_receiver import Receiver

IDLE_AFTER_S = 2

SCRIPT = """
    import argparse, json, os, sys, time
    import nsml

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--behave", default="ok")
    config = parser.parse_args()

    def save(dir_name, **kwargs):
        json.dump({"w": 1}, open(os.path.join(dir_name, "state.json"), "w"))

    def load(dir_name, **kwargs):
        json.load(open(os.path.join(dir_name, "state.json")))

    def infer(raw_data, **kwargs):
        if config.behave == "raise":
            raise ZeroDivisionError("boom in infer")
        return [(0.5, 1) for _ in raw_data]

    nsml.bind(save=save, load=load, infer=infer)
    if config.pause:
        nsml.paused(scope=locals())
    elif config.behave == "fail":
        sys.exit(3)
    elif config.behave == "sleep":          # idle: no report, no CPU
        time.sleep(120)
    elif config.behave == "busy":           # busy: no report, all CPU
        end = time.time() + 8
        while time.time() < end:
            pass
    elif config.behave == "wake":           # idle, then a report, then idle again
        time.sleep(6)
        nsml.report(step=1, loss=0.5)
        time.sleep(120)
    else:
        nsml.report(summary=True, step=0, loss=1.0)
        nsml.save("best")
"""


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def notified(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Platform]:
    """A platform that flags sessions idle after 2 s, its user's webhook set to ``receiver``."""
    with running_platform(
        tmp_path_factory, "notify", NSML_IDLE_AFTER_S=str(IDLE_AFTER_S), NSML_MAX_CONCURRENT="4"
    ) as platform:
        platform.nsml("notify", "--webhook", f"{receiver.url}/hook?key=s3cret")
        yield platform


def of(session: str, event: str) -> Callable[[dict[str, Any]], bool]:
    return lambda body: body.get("session") == session and body.get("event") == event


def test_the_webhook_is_set_shown_validated_and_removed(platform: Platform) -> None:
    assert platform.json("notify")["webhook"] is None
    assert "No webhook set" in platform.nsml("notify").stdout
    url = "https://hooks.example.org/services/T0/B0?token=abc"
    shown = platform.json("notify", "--webhook", url)
    assert shown["webhook"] == url and "session_idle" in shown["events"]
    assert platform.json("notify")["webhook"] == url
    assert url in platform.nsml("notify").stdout
    for bad, why in [
        ("ftp://example.org/x", "http:// or https://"),
        ("not a url", "spaces"),
        ("http://", "no host"),
        ("http://example.org:port/", "cannot be parsed"),
        ("https://example.org/" + "a" * 3000, "longer than 2048"),
        ("javascript:alert(1)", "http:// or https://"),
    ]:
        result = platform.nsml("notify", "--webhook", bad, check=False)
        assert result.returncode == 1, bad
        assert why in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert platform.json("notify")["webhook"] == url  # a refused URL changes nothing
    both = platform.nsml("notify", "--webhook", url, "--off", check=False)
    assert both.returncode == 1 and "not both" in both.stderr
    assert platform.json("notify", "--off")["webhook"] is None
    assert platform.json("notify")["webhook"] is None


def test_ended_and_failed_sessions_are_posted(notified: Platform, receiver: Receiver) -> None:
    folder = notified.project("ends", SCRIPT)
    good = notified.run(folder)
    bad = notified.run(folder, args="--behave fail")
    notified.wait(good)
    notified.wait(bad)
    (exited,) = receiver.wait_for(of(good, "session_exited"))
    assert exited["status"] == "exited" and exited["exit_code"] == 0 and exited["dataset"] == "demo_kin"
    assert exited["started_at"] and exited["ended_at"] and exited["created_at"]
    (failed,) = receiver.wait_for(of(bad, "session_failed"))
    assert failed["status"] == "failed" and failed["exit_code"] == 3 and failed["reason"] == "exit code 3"
    paths = {path for path, _ in receiver.posts}
    assert paths == {"/hook?key=s3cret"}


def test_submissions_scored_and_failed_are_posted(notified: Platform, receiver: Receiver) -> None:
    folder = notified.project("submits", SCRIPT)
    good = notified.run(folder)
    broken = notified.run(folder, args="--behave raise")
    notified.wait(good)
    notified.wait(broken)
    notified.nsml("submit", good, "best")
    notified.nsml("submit", broken, "best", check=False)
    (scored,) = receiver.wait_for(lambda b: b["event"] == "submission_scored" and b["session"] == good)
    assert scored["dataset"] == "demo_kin" and isinstance(scored["submission_id"], int)
    assert scored["status"] == "scored" and isinstance(scored["score"], float)
    assert scored["checkpoint"] == "best" and scored["finished_at"]
    board = notified.json("board", "demo_kin", "--private")
    mine = [s for s in board["submissions"] if s["id"] == scored["submission_id"]]
    assert mine and mine[0]["public_score"] == scored["score"]
    assert "private" not in json.dumps(scored)  # the private part stays hidden until the close
    (failed,) = receiver.wait_for(lambda b: b["event"] == "submission_failed" and b["session"] == broken)
    assert failed["status"] == "failed" and failed["score"] is None and failed["reason"]


def test_idle_sessions_are_flagged_once_per_spell_and_busy_ones_never(
    notified: Platform, receiver: Receiver
) -> None:
    folder = notified.project("idle", SCRIPT)
    sleeper = notified.run(folder, args="--behave sleep")
    busy = notified.run(folder, args="--behave busy")
    waker = notified.run(folder, args="--behave wake")
    try:
        (flag,) = receiver.wait_for(of(sleeper, "session_idle"), timeout=45)
        assert flag["status"] == "running" and flag["idle_since"]
        listed = notified.session(sleeper)
        assert listed["status"] == "running" and listed["idle_since"]
        assert datetime.fromisoformat(listed["idle_since"]) == datetime.fromisoformat(flag["idle_since"])
        table = notified.nsml("ps").stdout
        assert "Running (idle" in table
        # the web UI's session list says it too
        info = notified.server_info()
        cookies = {"nsml_token": info["token"]}
        page = httpx.get(f"{info['url']}/sessions", cookies=cookies, timeout=30)
        assert page.status_code == 200 and "(idle " in page.text and 'idle"' in page.text
        page = httpx.get(f"{info['url']}/sessions/{sleeper}", cookies=cookies, timeout=30)
        assert page.status_code == 200 and "(idle " in page.text

        # a report clears the flag; going quiet again is a new spell, notified again
        first, second = receiver.wait_for(of(waker, "session_idle"), count=2, timeout=60)
        gap = datetime.fromisoformat(second["idle_since"]) - datetime.fromisoformat(first["idle_since"])
        assert gap.total_seconds() >= 4

        notified.wait(busy, timeout=60)  # it ran 8 s without a report, using the CPU all along
        assert receiver.events(of(busy, "session_idle")) == []
        # one notification per spell, however long it lasts
        assert len(receiver.events(of(sleeper, "session_idle"))) == 1
    finally:
        for name in (sleeper, waker, busy):
            notified.nsml("stop", name, check=False)
    stopped = notified.wait(sleeper)
    assert stopped["idle_since"] is None  # only a running session is idle
    receiver.wait_for(of(sleeper, "session_stopped"))


def test_a_failing_webhook_is_retried_and_a_dead_one_never_blocks(
    notified: Platform, receiver: Receiver
) -> None:
    folder = notified.project("retry", SCRIPT)
    with receiver._changed:
        receiver.fail_first = 2
    retried = notified.run(folder)
    notified.wait(retried)
    posts = receiver.wait_for(of(retried, "session_exited"), count=3, timeout=30)
    assert len(posts) == 3  # two 500s, then delivered

    dead_port = free_port()  # a port nobody listens on
    notified.nsml("notify", "--webhook", f"http://127.0.0.1:{dead_port}/secret-path")
    try:
        started = time.monotonic()
        dead = notified.run(folder)
        notified.wait(dead)
        assert notified.session(dead)["status"] == "exited"
        assert time.monotonic() - started < 30
        log = notified.home / "server.log"
        deadline = time.monotonic() + 30
        while "failed after 3 attempt" not in log.read_text():
            assert time.monotonic() < deadline, "the failed delivery was not logged"
            time.sleep(0.2)
        text = log.read_text()
        assert f"127.0.0.1:{dead_port}" in text
        assert "secret-path" not in text and "s3cret" not in text and "ENDPOINT-SECRET-BODY" not in text
    finally:
        notified.nsml("notify", "--webhook", f"{receiver.url}/hook?key=s3cret")


PROBE = """
    import os, httpx
    socket_path = os.environ.get("NSML_API_SOCKET")
    client = httpx.Client(
        transport=httpx.HTTPTransport(uds=socket_path) if socket_path else None,
        base_url=os.environ["NSML_API_URL"] + "/api/v1",
        headers={"Authorization": "Bearer " + os.environ["NSML_SESSION_TOKEN"]},
    )
    print("PUT", client.put("/notify", json={"webhook": "http://127.0.0.1:9/stolen"}).status_code)
    print("GET", client.get("/notify").status_code)
    print("DELETE", client.delete("/notify").status_code)
"""


def test_a_sessions_own_token_cannot_read_or_change_the_webhook(
    notified: Platform, receiver: Receiver
) -> None:
    probe = notified.run(notified.project("probe", PROBE))
    notified.wait(probe)
    log = notified.nsml("logs", probe).stdout
    assert "PUT 403" in log and "GET 403" in log and "DELETE 403" in log
    assert notified.json("notify")["webhook"] == f"{receiver.url}/hook?key=s3cret"


def test_sessions_a_server_shutdown_ends_are_still_posted(notified: Platform, receiver: Receiver) -> None:
    sleeper = notified.run(notified.project("shutdown", SCRIPT), args="--behave sleep")
    notified.wait(sleeper, ("running",))
    notified.stop_server()
    (failed,) = receiver.wait_for(of(sleeper, "session_failed"), timeout=30)
    assert failed["reason"] == "the server shut down while the session ran"
    assert notified.session(sleeper)["status"] == "failed"  # the next command starts a server again


def test_a_redirect_is_not_followed_and_a_hanging_endpoint_delays_no_other(receiver: Receiver) -> None:
    """The platform's sender itself, against real endpoints on 127.0.0.1."""
    hooks = {
        "hangs": [f"{receiver.url}/hang"],
        "moves": [f"{receiver.url}/redirect"],
        "fine": [f"{receiver.url}/fine"],
    }
    sender = WebhookSender(lambda account: hooks[account], timeout_s=1.0, attempts=2, backoff_s=0.1)
    sender.start()
    try:
        started = time.monotonic()
        sender.send("hangs", {"event": "probe", "session": "hangs"})
        sender.send("fine", {"event": "probe", "session": "fine"})
        receiver.wait_for(lambda body: body.get("session") == "fine", timeout=10)
        assert time.monotonic() - started < 2.5  # not behind the endpoint that hangs
        sender.send("moves", {"event": "probe", "session": "moves"})
        receiver.wait_for(lambda body: body.get("session") == "hangs", count=2, timeout=10)  # timed out twice
        receiver.wait_for(lambda body: body.get("session") == "moves", timeout=10)
    finally:
        sender.stop()
    assert [path for path, _ in receiver.posts].count("/redirect") == 1  # a 3xx is no reason to retry
    assert "/landed" not in [path for path, _ in receiver.posts]
