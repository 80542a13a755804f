"""Credits: charged per minute and slot, refused when empty, stopped when exhausted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Platform, running_platform, session_minutes

SLEEPER = """
    import sys, time
    print("started", flush=True)
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(
        tmp_path_factory, "credits", NSML_CREDITS="1", NSML_CREDIT_INTERVAL_S="0.3", NSML_GPUS="0,1"
    ) as instance:
        yield instance


def _me(platform: Platform) -> str:
    return str(platform.json("whoami")["name"])


def _ledger_adds_up(platform: Platform) -> dict:  # type: ignore[type-arg]
    data = platform.json("credit")
    assert sum(event["delta"] for event in data["history"]) == pytest.approx(data["balance"], abs=1e-9)
    return data


def test_run_is_refused_without_credit(metered: Platform) -> None:
    folder = metered.project("sleeper", SLEEPER)
    assert metered.json("credit")["balance"] == 0 and metered.json("credit")["enforced"] is True
    refused = metered.nsml("run", "-d", "demo_kin", cwd=folder, check=False)
    assert refused.returncode == 1
    assert "NOT_ENOUGH_CREDIT" in refused.stderr and "0.00 credits" in refused.stderr


def test_sessions_are_charged_per_minute_and_slot(metered: Platform) -> None:
    me = _me(metered)
    metered.nsml("admin", "credit", me, "10")
    folder = metered.project("charged", SLEEPER)
    cpu = metered.json("run", "-d", "demo_kin", "-a", "1", cwd=folder)["name"]
    gpus = metered.json("run", "-d", "demo_kin", "-g", "2", "-a", "1", cwd=folder)["name"]
    quick = metered.json("run", "-d", "demo_kin", cwd=folder)["name"]  # ends between two ticks
    sessions = {name: metered.wait(name) for name in (cpu, gpus, quick)}
    assert {s["status"] for s in sessions.values()} == {"exited"}
    data = _ledger_adds_up(metered)
    for name, slots in ((cpu, 1), (gpus, 2), (quick, 1)):
        charged = -sum(e["delta"] for e in data["history"] if e["reason"].endswith(" " + name))
        # every second from start to end, times the slots: the last one billed when it ended
        assert charged == pytest.approx(session_minutes(sessions[name]) * slots, rel=1e-6), name
        assert charged > 0, name
    assert 10 - data["balance"] == pytest.approx(
        sum(session_minutes(sessions[n]) * k for n, k in ((cpu, 1), (gpus, 2), (quick, 1))), rel=1e-6
    )


def test_a_session_is_stopped_when_its_owner_runs_out(metered: Platform) -> None:
    me = _me(metered)
    balance = metered.json("credit")["balance"]
    metered.nsml("admin", "credit", me, "--", str(-balance + 0.03))  # about two seconds left
    folder = metered.project("exhausted", SLEEPER)
    name = metered.json("run", "-d", "demo_kin", "-a", "60", cwd=folder)["name"]
    session = metered.wait(name, timeout=30)
    assert session["status"] == "stopped" and session["reason"] == "the owner ran out of credits"
    data = _ledger_adds_up(metered)
    assert data["balance"] <= 0
    again = metered.nsml("run", "-d", "demo_kin", cwd=folder, check=False)
    assert again.returncode == 1 and "NOT_ENOUGH_CREDIT" in again.stderr


def test_daily_allowance_tops_up(metered: Platform) -> None:
    me = _me(metered)
    data = metered.json("admin", "credit", me, "--daily", "5")
    assert data["balance"] == pytest.approx(5) and data["daily"] == 5
    assert "daily allowance" in metered.nsml("credit").stdout
    _ledger_adds_up(metered)
