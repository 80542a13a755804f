"""The janitor removes stale uploads, unused environments and orphans, at start and on schedule,
and leaves alone what is fresh or in use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import running_platform
from nsml.runners.environments import environment_key

OLD = time.time() - 3 * 3600
SLEEPS = """
    import time
    print("RUNNING", flush=True)
    time.sleep(60)
"""


def _plant(path: Path, size: int = 0, folder: bool = False) -> Path:
    if folder:
        (path / "inside").mkdir(parents=True, exist_ok=True)
        (path / "inside" / "data.bin").write_bytes(os.urandom(size))
        for part in (path / "inside" / "data.bin", path / "inside", path):
            os.utime(part, (OLD, OLD))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        os.utime(path, (OLD, OLD))
    return path


def _eventually(condition: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _fake_environment(home: Path, requirements: list[str]) -> Path:
    """What ensure_environment leaves for ``requirements``, without pip."""
    env = home / "envs" / environment_key(requirements)
    env.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    (env / "ready").write_text("ok\n")
    return env


def test_the_janitor_sweeps_at_start_and_on_schedule(tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = {"NSML_JANITOR_INTERVAL_S": "3600", "NSML_STALE_UPLOAD_S": "3600", "NSML_STALE_ENV_S": "3600"}
    with running_platform(tmp_path_factory, "janitor", **settings) as platform:
        home = platform.home
        stale = [
            _plant(home / "uploads" / "aaaa.tar.gz", 1024 * 1024),
            _plant(home / "uploads" / "bbbb.tar.gz.part", 4096),
            _plant(home / "sessions" / "999", 2048, folder=True),
            _plant(home / "sessions" / ".incoming-0123", 10, folder=True),
            _plant(home / "checkpoints" / "999", 2048, folder=True),
            _plant(home / "datasets" / ".incoming-4567", 10, folder=True),
            _plant(home / "envs" / "0123456789abcdef", 10, folder=True),
            _plant(home / "cache" / "root" / f"{'ab' * 32}.tar", 10),  # no entry in the store
        ]
        fresh = home / "uploads" / "cccc.tar.gz"
        fresh.write_bytes(b"still being used")
        platform.nsml("ps")  # the server starts, and the janitor sweeps once
        assert _eventually(lambda: not any(p.exists() for p in stale)), [p for p in stale if p.exists()]
        assert fresh.exists() and (home / "datasets" / "demo_kin").is_dir()
        log = (home / "server.log").read_text()
        assert "janitor freed" in log and "2 stale uploads (1.0 MiB)" in log
        assert "1 unused environments" in log and "2 folders of deleted sessions" in log
        assert "1 unreferenced cache archives" in log
        platform.stop_server()

        # on schedule: every second now; an environment a running session uses stays
        platform.env["NSML_JANITOR_INTERVAL_S"] = "1"
        env = _fake_environment(home, ["tabulate"])
        folder = platform.project("janitor_env", SLEEPS, **{"requirements.txt": "tabulate\n"})
        name = platform.run(folder)
        assert _eventually(lambda: "RUNNING" in platform.nsml("logs", name).stdout, 60)
        assert "reusing environment" in platform.nsml("logs", name).stdout
        os.utime(env / "ready", (OLD, OLD))
        later = _plant(home / "uploads" / "dddd.tar.gz", 100)
        assert _eventually(lambda: not later.exists())
        time.sleep(2)
        assert (env / "ready").exists(), "an environment in use was removed"
        platform.nsml("stop", name)  # "ready" is still old: once unused, it goes
        assert _eventually(lambda: not env.exists())
        assert platform.session(name)["status"] == "stopped"
