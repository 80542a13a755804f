"""GPU allocation on a host that declares two GPUs (NSML_GPUS=0,1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import HOLD, Platform, gpus_seen, running_platform


@pytest.fixture(scope="module")
def two_gpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "gpus", NSML_GPUS="0,1", NSML_MAX_CONCURRENT="4") as instance:
        yield instance


def test_sessions_get_free_gpus_or_wait_for_them(two_gpus: Platform) -> None:
    folder = two_gpus.project("hold", HOLD)
    big = two_gpus.json("run", "-d", "demo_kin", "-g", "2", "-a", "600", cwd=folder)["name"]
    two_gpus.wait(big, ("running",))
    waiting = two_gpus.json("run", "-d", "demo_kin", "-g", "1", cwd=folder)["name"]
    cpu_only = two_gpus.json("run", "-d", "demo_kin", cwd=folder)["name"]
    assert two_gpus.wait(cpu_only)["status"] == "exited"  # a session that fits goes ahead
    assert gpus_seen(two_gpus, cpu_only) == ("-", "0")
    assert gpus_seen(two_gpus, big) == ("0,1", "2")
    session = two_gpus.session(waiting)
    assert session["status"] == "queued" and "No machine available" in session["reason"]
    assert "Queued #1 (waits for a GPU)" in two_gpus.nsml("ps").stdout

    two_gpus.nsml("stop", big)
    assert two_gpus.wait(waiting)["status"] == "exited"
    devices, count = gpus_seen(two_gpus, waiting)
    assert devices in ("0", "1") and count == "1"


def test_more_gpus_than_the_host_has_is_refused(two_gpus: Platform) -> None:
    folder = two_gpus.project("greedy", HOLD)
    result = two_gpus.nsml("run", "-d", "demo_kin", "-g", "3", cwd=folder, check=False)
    assert result.returncode == 1
    assert "at most 2 GPUs per session" in result.stderr or "has 2 GPUs" in result.stderr
    negative = two_gpus.nsml("run", "-d", "demo_kin", "-g", "-1", cwd=folder, check=False)
    assert negative.returncode == 1 and "negative" in negative.stderr


def test_the_per_session_maximum_is_enforced_below_the_host(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_platform(
        tmp_path_factory, "gpu-cap", NSML_GPUS="0,1", NSML_MAX_GPUS_PER_SESSION="1"
    ) as platform:
        folder = platform.project("capped", HOLD)
        refused = platform.nsml("run", "-d", "demo_kin", "-g", "2", cwd=folder, check=False)
        assert refused.returncode == 1
        assert "at most 1 GPUs per session on this server; -g 2 asks for more" in refused.stderr
        assert platform.json("ps", "-a") == []  # nothing was created
        name = platform.json("run", "-d", "demo_kin", "-g", "1", cwd=folder)["name"]
        assert platform.wait(name)["status"] == "exited"
        devices, count = gpus_seen(platform, name)
        assert devices in ("0", "1") and count == "1"
