"""Fair share between participants: one user's queue cannot hold every slot.

Two users on one real server (the operator, and bob logged in from his own folder):
free slots go to the user with the fewest running sessions, the operator's per-user cap
holds a user at N running even with slots free, and evaluations follow the same rules.
"""

from __future__ import annotations

import json
import operator
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import LONG, NSML, TRAIN_2018, Platform, running_platform, second_user
from nsml.runners.fairshare import cap_reason, next_turn
from nsml.server.services.evaluation_slots import EvaluationSlots


def wait_for_reason(platform: Platform, name: str, timeout: float = 10) -> str:
    """The queued session's reason to wait, recorded just after it was queued."""
    deadline = time.monotonic() + timeout
    while True:
        session = platform.session(name)
        if session["reason"] or time.monotonic() > deadline:
            assert session["status"] == "queued", session
            return str(session["reason"] or "")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def two_slots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "fair", NSML_MAX_CONCURRENT="2") as instance:
        yield instance


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(
        tmp_path_factory,
        "capped",
        NSML_MAX_CONCURRENT="3",
        NSML_MAX_SESSIONS_PER_USER="2",
        NSML_MAX_EVALUATIONS_PER_USER="1",
    ) as instance:
        yield instance


def test_a_free_slot_goes_to_the_user_with_fewest_running(two_slots: Platform, tmp_path: Path) -> None:
    alice = two_slots
    bob = second_user(alice, "bob", tmp_path)
    folder = alice.project("hog", TRAIN_2018)
    first, second = alice.run(folder, args=LONG), alice.run(folder, args=LONG)
    alice.wait(first, ("running",))
    alice.wait(second, ("running",))
    more = [alice.run(folder, args=LONG) for _ in range(2)]  # queued before bob's
    theirs = bob.run(bob.project("mine", TRAIN_2018), args=LONG)
    assert bob.session(theirs)["status"] == "queued"
    try:
        alice.nsml("stop", first)
        assert bob.wait(theirs, ("running",), timeout=30)["status"] == "running"
        assert [alice.session(name)["status"] for name in more] == ["queued", "queued"]
        alice.nsml("stop", second)  # then alice's next, the earliest she queued
        alice.wait(more[0], ("running",), timeout=30)
        assert alice.session(more[1])["status"] == "queued"
    finally:
        for name in (*more, second):
            alice.nsml("stop", name, check=False)
        bob.nsml("stop", theirs, check=False)


def test_the_per_user_cap_holds_a_user_at_n_running(capped: Platform, tmp_path: Path) -> None:
    alice = capped
    bob = second_user(alice, "bob", tmp_path)  # starts the server
    status = alice.nsml("server", "status").stdout
    assert "Sessions at once: 3; per user: 2; evaluations per user: 1" in status, status
    assert alice.json("server", "status")["limits"]["fair_share"]["max_sessions_per_user"] == 2
    folder = alice.project("hog", TRAIN_2018)
    running = [alice.run(folder, args=LONG) for _ in range(2)]
    for name in running:
        alice.wait(name, ("running",))
    held = alice.run(folder, args=LONG)
    try:
        reason = wait_for_reason(alice, held)
        assert reason.startswith("Per-user limit: you have 2 sessions running"), reason
        assert "Queued #1 (waits for your session slot (2 of 2 in use))" in alice.nsml("ps").stdout
        theirs = bob.run(bob.project("mine", TRAIN_2018), args=LONG)  # the third slot is bob's
        assert bob.wait(theirs, ("running",), timeout=30)["status"] == "running"
        assert alice.session(held)["status"] == "queued"
        alice.nsml("stop", running[0])
        started = alice.wait(held, ("running",), timeout=30)
        assert started["reason"] is None
        bob.nsml("stop", theirs)
    finally:
        for name in (*running, held):
            alice.nsml("stop", name, check=False)


# infer takes --sleep seconds per call: a slow evaluation
SLOW_INFER = TRAIN_2018.replace(
    "def infer(raw_data, **kwargs):\n", "def infer(raw_data, **kwargs):\n        time.sleep(config.sleep)\n"
)


def test_evaluations_beyond_the_per_user_cap_wait_their_turn(capped: Platform, tmp_path: Path) -> None:
    alice = capped
    carol = second_user(alice, "carol", tmp_path)
    # alice's infer sleeps long enough to outlast carol's preview on a loaded machine
    slow = alice.run(alice.project("slow", SLOW_INFER), args="--epochs 1 --sleep 10")
    quick = carol.run(carol.project("quick", TRAIN_2018), args="--epochs 1")
    assert alice.wait(slow, timeout=90)["status"] == "exited"
    assert carol.wait(quick, timeout=90)["status"] == "exited"
    submits = [
        subprocess.Popen(
            [NSML, "submit", slow, "0", "-b", "1000", "--json"],
            cwd=alice.workdir,
            env=alice.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            mine = alice.json("board", "demo_kin", "--private")["submissions"]
            # the reason is recorded when the queued one reaches the slot gate, just after its row
            if sorted(s["status"] for s in mine) == ["queued", "running"] and all(
                s["reason"] for s in mine if s["status"] == "queued"
            ):
                break
            assert time.monotonic() < deadline, mine
            time.sleep(0.2)
        [held] = [s for s in mine if s["status"] == "queued"]
        assert held["reason"].startswith("Per-user limit: you have 1 evaluations running"), held
        started = time.monotonic()
        preview = carol.json("submit", quick, "0", "-t")  # a free slot: carol's at once
        assert len(preview) == 10 and time.monotonic() - started < 30
        assert alice.json("board", "demo_kin", "--private")["submissions"][0]["status"] in (
            "queued",
            "running",
        )
        results = [json.loads(p.communicate(timeout=120)[0]) for p in submits]
    finally:
        for process in submits:
            process.kill()
    assert [r["status"] for r in results] == ["scored", "scored"], results
    assert all(r["reason"] is None for r in results)


def test_next_turn_prefers_the_fewest_running_then_the_earliest() -> None:
    queue = [("a", 1), ("a", 2), ("b", 3)]
    owner = operator.itemgetter(0)
    assert next_turn(queue, owner, {"a": 2}, 0) == ("b", 3)
    assert next_turn(queue, owner, {"a": 1, "b": 1}, 0) == ("a", 1)
    assert next_turn(queue, owner, {"b": 1}, 1) == ("a", 1)
    assert next_turn(queue, owner, {"a": 1, "b": 1}, 1) is None  # both at the cap
    assert next_turn(queue, owner, {}, 0, startable=lambda q: q[1] == 2) == ("a", 2)


def test_evaluation_slots_go_to_the_owner_with_fewest_running() -> None:
    slots = EvaluationSlots(total=2)
    assert slots.acquire("a", 0) and slots.acquire("a", 0)
    order: list[str] = []

    def wait(owner: str) -> None:
        assert slots.acquire(owner, 30)
        order.append(owner)

    waiters = [threading.Thread(target=wait, args=(owner,)) for owner in ("a", "b")]
    for thread in waiters:  # a's ticket first
        thread.start()
        time.sleep(0.2)
    slots.release("a")
    waiters[1].join(timeout=10)
    assert order == ["b"]  # a still has one running, b none
    slots.release("a")
    waiters[0].join(timeout=10)
    assert order == ["b", "a"]


def test_evaluation_slots_hold_an_owner_at_the_cap() -> None:
    slots = EvaluationSlots(total=3, per_owner=1)
    told: list[str] = []
    assert slots.acquire("a", 0)
    assert not slots.acquire("a", 0.3, told.append)
    assert told == [cap_reason(1, "evaluations")]
    assert slots.acquire("b", 0)  # a slot was free all along
    slots.release("a")
    assert slots.acquire("a", 0)
