"""Fixtures: a real platform (embedded server) in a temporary NSML_HOME, driven by the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
NSML = str(Path(sys.executable).parent / "nsml")
CLI_TIMEOUT_S = 120


class Platform:
    """Runs ``nsml`` commands as a user would, against one NSML_HOME."""

    def __init__(self, home: Path, workdir: Path) -> None:
        self.home = home
        self.workdir = workdir
        self.env = {**os.environ, "NSML_HOME": str(home)}
        for key in ("NSML_SERVER_URL", "NSML_TOKEN"):
            self.env.pop(key, None)
        # tests submit many times to the demo datasets; test_fair_share checks the default
        self.env.setdefault("NSML_DEFAULT_DAILY_LIMIT", "0")

    def nsml(
        self,
        *args: str,
        cwd: Path | None = None,
        check: bool = True,
        timeout: float = CLI_TIMEOUT_S,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [NSML, *args],
            cwd=cwd or self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"nsml {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str, cwd: Path | None = None, input: str | None = None) -> Any:
        return json.loads(self.nsml(*args, "--json", cwd=cwd, input=input).stdout)

    def project(self, name: str, main: str, **extra: str) -> Path:
        """A folder holding a training script (and any extra files)."""
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "main.py").write_text(textwrap.dedent(main))
        for relative, content in extra.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return folder

    def run(self, folder: Path, dataset: str = "demo_kin", args: str = "", message: str = "") -> str:
        created = self.json("run", "-d", dataset, "-a", args, "-m", message, cwd=folder)
        return created["name"]

    def session(self, name: str) -> dict[str, Any]:
        for session in self.json("ps", "-a"):
            if session["name"] == name:
                return session
        raise AssertionError(f"{name} not in nsml ps -a")

    def wait(
        self, name: str, statuses: tuple[str, ...] = ("exited", "failed", "stopped"), timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            session = self.session(name)
            if session["status"] in statuses:
                return session
            time.sleep(0.1)
        raise AssertionError(f"{name} did not reach {statuses} in {timeout}s: {self.session(name)}")

    def server_info(self) -> dict[str, Any]:
        return json.loads((self.home / "server.json").read_text())

    def stop_server(self) -> None:
        self.nsml("server", "stop", "-y", check=False)


@contextmanager
def running_platform(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> Iterator[Platform]:
    """A platform in a fresh NSML_HOME whose server gets ``env``; stopped afterwards."""
    base = tmp_path_factory.mktemp(name)
    instance = Platform(base / "home", base / "work")
    instance.workdir.mkdir()
    instance.env.update(env)
    try:
        yield instance
    finally:
        instance.stop_server()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "platform") as instance:
        yield instance


@pytest.fixture
def shared_data() -> Path:
    """The real datasets mirror; required under CI, skipped with a reason elsewhere."""
    return require_shared_data()


def require_shared_data() -> Path:
    """``shared_data`` for fixtures of a wider scope."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {SHARED_DATA} is missing")
    pytest.skip(f"real data mirror {SHARED_DATA} not present (clone the project beside shared/)")


TRAIN_2018 = """
    import argparse, json, os, time
    import nsml

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0)
    parser.add_argument("--tag", default="")
    config = parser.parse_args()

    state = {"weights": 0}

    def save(dir_name, **kwargs):
        with open(os.path.join(dir_name, "model.json"), "w") as handle:
            json.dump(state, handle)

    def load(dir_name, **kwargs):
        with open(os.path.join(dir_name, "model.json")) as handle:
            state.update(json.load(handle))

    def infer(raw_data, **kwargs):
        return [(0.5, 1) for _ in raw_data]

    nsml.bind(save=save, load=load, infer=infer)
    if config.pause:
        nsml.paused(scope=locals())

    with open(os.path.join(nsml.DATASET_PATH, "train", "train_data"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    print(f"training on {len(lines)} examples; test visible: "
          f"{os.path.exists(os.path.join(nsml.DATASET_PATH, 'test'))}", flush=True)
    for epoch in range(int(config.iteration), config.epochs):
        state["weights"] += 1
        nsml.report(summary=True, scope=locals(), step=epoch, epoch=epoch,
                    train__loss=1.0 / (epoch + 1))
        nsml.save(epoch)
        print(f"epoch {epoch} done, weights {state['weights']}", flush=True)
        time.sleep(config.sleep)
"""


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server (Debian package, installed by `make test`), or a skip."""
    from postgres import binaries, postgres_server

    if binaries() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but PostgreSQL is not installed; `make test` installs it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with postgres_server() as url:
        yield url
