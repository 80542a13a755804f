"""Attacks a hostile participant tried, run against a real server as root (as CI runs)
and, where the machine allows, against the sandbox as an unprivileged user: each must fail.
Then every resource limit, with the reason a person reads when it ends a session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Platform, running_platform
from hostile_scripts import ESCAPE, MEMORY_HOG

HOSTILE_INFER = r"""
    import argparse, os, nsml
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--hog", type=int, default=0)
    config = parser.parse_args()
    def save(d, **k):
        open(os.path.join(d, "w"), "w").write("1")
    def load(d, **k):
        pass
    def infer(data, **k):
        try:
            open(os.path.join(os.environ["NSML_CHECKPOINT_PATH"], "w"), "w").write("poison")
            print("CHECKPOINT written", flush=True)
        except OSError as exc:
            print(f"CHECKPOINT refused {exc.errno}", flush=True)
        if config.hog:
            blocks = [bytearray(64 * 1024 * 1024) for _ in range(config.hog)]
            for block in blocks:
                block[::4096] = b"x" * len(block[::4096])
        return [(0.5, 1) for _ in data]
    nsml.bind(save=save, load=load, infer=infer)
    if config.pause:
        nsml.paused(scope=locals())
    nsml.save("only")
"""

LIMITS = {
    "NSML_DEFAULT_MEMORY": "300M",
    "NSML_EVAL_MEMORY": "300M",
    "NSML_TMP_SIZE": "16M",
    "NSML_DEFAULT_SHM": "8M",
    "NSML_MAX_PIDS": "64",
    "NSML_WORK_QUOTA": "64M",
    "NSML_LOG_LIMIT": "1M",
}


def _require_bwrap() -> None:
    if shutil.which("bwrap") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but bubblewrap is not installed; `make install` installs it")
        pytest.skip("bubblewrap (bwrap) is not installed")


@pytest.fixture(scope="module")
def confined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    _require_bwrap()
    with running_platform(tmp_path_factory, "confined", **LIMITS) as instance:
        instance.nsml("dataset", "ls")
        yield instance


def _line(platform: Platform, name: str, marker: str) -> str:
    log = platform.nsml("logs", name).stdout
    assert marker in log, log[-3000:]
    return log.split(marker, 1)[1].splitlines()[0]


def test_a_session_has_no_capability_and_cannot_touch_its_mounts(confined: Platform) -> None:
    train = confined.home / "datasets" / "demo_kin" / "train"
    before = sorted(os.listdir(train))
    name = confined.run(confined.project("escape", ESCAPE), "demo_kin")
    assert confined.wait(name)["status"] == "exited", confined.nsml("logs", name).stdout
    seen = json.loads(_line(confined, name, "ESCAPE "))
    assert seen["cap_eff"] == "0000000000000000"
    assert seen["uid"] != 0
    for attempt in ("remount_train", "umount_train", "unshare_user", "unshare_mount"):
        assert seen[attempt] != 0, (attempt, seen)
    for target in ("write_train", "write_python", "write_platform", "write_usr", "write_cache"):
        assert seen[target].startswith("refused"), (target, seen)
    assert seen["demo_labels_visible"] is False
    assert sorted(os.listdir(train)) == before


def _probe_argv(tmp: Path) -> tuple[list[str], Path]:
    """A shell probe (no Python: the unprivileged user may not read the interpreter's folder)."""
    from nsml.runners import sandbox
    from nsml.runners.limits import Limits

    data, work = tmp / "data", tmp / "work"
    data.mkdir()
    work.mkdir()
    (data / "train_label").write_text("1\n")
    for path in (tmp, data):
        path.chmod(0o755)
    work.chmod(0o777)
    script = (
        "grep CapEff /proc/self/status; echo uid $(id -u); "
        "mount -o remount,bind,rw /nsml/data 2>/dev/null; echo remount $?; "
        "umount /nsml/data 2>/dev/null; echo umount $?; "
        "unshare -Ur true 2>/dev/null; echo unshare $?; "
        "(echo poison > /nsml/data/train_label) 2>/dev/null; echo write $?"
    )
    mounts = sandbox.Mounts(work=work, extra=[sandbox.Mount(data, sandbox.DATA)])
    return sandbox.wrap(["/bin/sh", "-c", script], mounts, {}, limits=Limits()), data


@pytest.mark.parametrize("who", ["root", "unprivileged"])
def test_the_sandbox_holds_whoever_runs_it(
    who: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nsml.runners import sandbox

    _require_bwrap()
    monkeypatch.setattr(sandbox, "python_paths", lambda: [])
    tmp = Path(tempfile.mkdtemp(prefix=f"nsml-probe-{who}-"))  # pytest's folders are root's alone
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    argv, data = _probe_argv(tmp)
    if who == "unprivileged":
        if os.geteuid() != 0:
            pytest.skip("the suite runs unprivileged already: the root case is the other one")
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is not installed")
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    elif os.geteuid() != 0:
        pytest.skip("not running as root")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if who == "unprivileged" and result.returncode != 0 and "namespace" in result.stderr:
        pytest.skip(f"this kernel gives unprivileged users no user namespace: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    seen = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert seen["CapEff:"].strip() == "0000000000000000", seen
    assert seen["uid"] != "0"
    for attempt in ("remount", "umount", "unshare", "write"):
        assert seen[attempt] != "0", (attempt, seen)
    assert (data / "train_label").read_text() == "1\n"


def test_the_checkpoint_is_read_only_during_an_evaluation(confined: Platform) -> None:
    name = confined.run(confined.project("hostile_eval", HOSTILE_INFER), "demo_kin")
    assert confined.wait(name)["status"] == "exited", confined.nsml("logs", name).stdout
    preview = confined.nsml("submit", name, "only", "-t", check=False)
    assert preview.returncode == 0, preview.stderr
    stored = confined.home / "sessions"
    assert not list(stored.rglob("checkpoints/only/w")) or all(
        p.read_text() == "1" for p in stored.rglob("checkpoints/only/w")
    )


TMP_AND_SHM = r"""
    import json, os
    def fill(path, mib):
        try:
            with open(path, "wb") as f:
                for _ in range(mib):
                    f.write(b"x" * 1024 * 1024)
            return "filled"
        except OSError as exc:
            return f"refused {exc.errno}"
    import threading, time
    started = 0
    try:
        for _ in range(200):
            threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
            started += 1
    except RuntimeError:
        pass
    print("LIMITS " + json.dumps({"tmp": fill("/tmp/big", 32), "shm": fill("/dev/shm/big", 16),
                                   "threads": started}), flush=True)
"""

DISK_HOG = r"""
    import time
    for index in range(12):
        with open(f"part{index}", "wb") as f:
            f.write(b"x" * 8 * 1024 * 1024)
    time.sleep(30)
"""

CHATTY = r"""
    line = "x" * 1023
    for _ in range(3 * 1024):
        print(line)
    print("the end")
"""

BUSY = r"""
    import multiprocessing, resource, time
    def spin():
        end = time.monotonic() + 3
        while time.monotonic() < end:
            pass
    if __name__ == "__main__":
        start = time.monotonic()
        workers = [multiprocessing.Process(target=spin) for _ in range(4)]
        for w in workers: w.start()
        for w in workers: w.join()
        wall = time.monotonic() - start
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"CPU {(cpu.ru_utime + cpu.ru_stime) / wall:.2f}", flush=True)
"""


def test_memory_limit_ends_a_session_with_its_reason(confined: Platform) -> None:
    folder = confined.project("hog", MEMORY_HOG)
    created = confined.json("run", "-d", "demo_kin", "--memory", "256M", cwd=folder)
    ended = confined.wait(created["name"])
    assert ended["status"] == "failed"
    assert ended["reason"].startswith("killed: memory limit 256 MiB exceeded"), ended
    assert "survived" not in confined.nsml("logs", created["name"]).stdout


def test_sizes_are_checked_against_the_maxima(confined: Platform) -> None:
    folder = confined.project("hog", MEMORY_HOG)
    bad = confined.nsml("run", "-d", "demo_kin", "--memory", "lots", cwd=folder, check=False)
    assert bad.returncode == 1 and "write it like 512M" in bad.stderr
    huge = confined.nsml("run", "-d", "demo_kin", "--memory", "900T", cwd=folder, check=False)
    assert huge.returncode == 1 and "more than this server allows" in huge.stderr


def test_tmp_shm_and_process_limits(confined: Platform) -> None:
    name = confined.run(confined.project("fill", TMP_AND_SHM), "demo_kin")
    assert confined.wait(name)["status"] == "exited", confined.nsml("logs", name).stdout
    seen = json.loads(_line(confined, name, "LIMITS "))
    assert seen["tmp"] == "refused 28" and seen["shm"] == "refused 28"  # ENOSPC
    assert seen["threads"] < 64


def test_disk_quota_of_the_work_dir(confined: Platform) -> None:
    name = confined.run(confined.project("disk", DISK_HOG), "demo_kin")
    ended = confined.wait(name, timeout=60)
    assert ended["status"] == "failed"
    assert ended["reason"].startswith("killed: disk quota 64 MiB exceeded"), ended


def test_the_log_is_cut_at_its_cap(confined: Platform) -> None:
    name = confined.run(confined.project("chatty", CHATTY), "demo_kin")
    assert confined.wait(name)["status"] == "exited"
    log = confined.nsml("logs", name).stdout
    assert "the log reached its limit of 1 MiB" in log
    assert "the end" not in log
    assert len(log.encode()) < 1024 * 1024 + 4096


def test_a_cpu_request_caps_what_the_session_uses(confined: Platform) -> None:
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: a cap of one CPU changes nothing")
    folder = confined.project("busy", BUSY)
    created = confined.json("run", "-d", "demo_kin", "-c", "1", cwd=folder)
    assert confined.wait(created["name"], timeout=90)["status"] == "exited"
    used = float(_line(confined, created["name"], "CPU "))
    assert used < 1.4, f"4 busy processes under -c 1 used {used:.2f} CPUs"


def test_evaluation_memory_limit(confined: Platform) -> None:
    name = confined.run(confined.project("hostile_eval", HOSTILE_INFER), "demo_kin", "--hog 12")
    assert confined.wait(name)["status"] == "exited"
    result = confined.nsml("submit", name, "only", check=False)
    assert result.returncode == 1
    assert "memory limit 300 MiB exceeded" in result.stderr, result.stderr


def test_status_says_how_limits_are_enforced(confined: Platform) -> None:
    state = confined.json("server", "status")
    limits = state["limits"]
    assert limits["sandbox"] == "bubblewrap"
    assert limits["defaults"]["memory"] == "300 MiB"
    assert set(limits["enforced_by"]) >= {"memory", "pids", "cpus", "disk", "tmp", "shm", "log"}
    text = confined.nsml("server", "status").stdout
    assert "Enforced by" in text and "300 MiB" in text


def _our_groups(pid: int) -> list[Path]:
    found: list[Path] = []
    for base in Path("/sys/fs/cgroup").rglob(f"nsml-{pid}"):
        found.append(base)
    return found


def test_control_groups_are_removed(tmp_path_factory: pytest.TempPathFactory) -> None:
    _require_bwrap()
    with running_platform(tmp_path_factory, "groups", **LIMITS) as platform:
        platform.nsml("dataset", "ls")  # starts the server
        limits = platform.json("server", "status")["limits"]
        if limits["enforcer"] == "rlimit":
            pytest.skip(f"no control groups here: {limits['enforced_by']['memory']}")
        name = platform.run(platform.project("hog", MEMORY_HOG), "demo_kin")
        platform.wait(name)
        pid = platform.server_info()["pid"]
        bases = _our_groups(pid)
        assert bases, "the server made no control group"
        assert all(not list(base.glob("run-*")) for base in bases)
        platform.stop_server()
        assert _our_groups(pid) == []
