"""Fixtures: a real platform (embedded server) in a temporary NSML_HOME, driven by the CLI.

Also the one place test modules import shared code from (accounts, servers, scripts, the
``helpers`` package re-exported here): a test module imported by another would be
collected twice and lend its fixtures, so none imports another.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from helpers.browser import chromium
from helpers.scoring import (
    DEMO,
    RULE_SCRIPT,
    assert_test_labels_out_of_reach,
    rule_prediction,
    rule_scores,
    train_rule_session,
)
from helpers.scripts import HOLD, LONG, TRAIN_2018, gpus_seen
from helpers.servers import ADMIN_TOKEN, NSML, ForegroundServer, free_port, processes_with, wait_until_healthy

if TYPE_CHECKING:
    from nsml.store.sql.store import SqlStore

__all__ = [  # what test modules import from here; some of it defined in helpers
    "ADMIN_TOKEN", "DEMO", "HOLD", "LONG", "NSML", "PASSWORD", "ROOT", "RULE_SCRIPT", "TRAIN_2018",
    "ForegroundServer", "Platform", "admin_platform", "chromium", "assert_test_labels_out_of_reach",
    "client_platform", "free_port", "gpus_seen", "login", "processes_with", "require_shared_data",
    "rule_prediction", "rule_scores", "running_platform", "second_user", "session_minutes", "targz",
    "train_rule_session", "wait_until_healthy",
]  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
CLI_TIMEOUT_S = 120
PASSWORD = "correct horse battery"  # every test account's, unless a test needs another


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


def client_platform(base: Path, name: str) -> Platform:
    """A client folder of its own for ``name`` (``{name}-home``, ``{name}-work``), not logged in."""
    client = Platform(base / f"{name}-home", base / f"{name}-work")
    client.workdir.mkdir(parents=True)
    return client


def admin_platform(base: Path, server: ForegroundServer) -> Platform:
    """The operator of ``server``: a client holding its admin token, with no account."""
    admin = client_platform(base, "admin")
    admin.env.update(NSML_SERVER_URL=server.url, NSML_TOKEN=server.token)
    return admin


def login(client: Platform, url: str, name: str, password: str = PASSWORD) -> str:
    """``nsml login`` of ``client`` as ``name``; the token it stored."""
    client.nsml("login", url, "-u", name, "--password-stdin", input=password + "\n")
    return str(json.loads((client.home / "client.json").read_text())["token"])


def second_user(platform: Platform, name: str, base: Path, password: str = PASSWORD) -> Platform:
    """Another participant of ``platform``'s server, with a client folder of their own."""
    platform.nsml("admin", "user", "add", name, "--password-stdin", input=password + "\n")
    client = client_platform(base, name)
    login(client, platform.server_info()["url"], name, password)
    return client


def targz(files: dict[str, bytes]) -> bytes:
    """A gzipped tar of ``files`` (name: content), as uploads and checkpoints travel."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def session_minutes(session: dict[str, Any]) -> float:
    """How long a session of ``nsml ps`` ran, in minutes: what its credits pay for."""
    started, ended = (datetime.fromisoformat(session[k]) for k in ("started_at", "ended_at"))
    return (ended - started).total_seconds() / 60


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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nsml.db'}"
        return
    from sqlalchemy import create_engine, text

    base = request.getfixturevalue("postgres_url")
    name = f"t{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    yield base.replace("/nsml?", f"/{name}?")


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    """The SQL store on ``database_url``, closed afterwards."""
    from nsml.store import open_store
    from nsml.store.sql.store import SqlStore

    instance = open_store(database_url)
    assert isinstance(instance, SqlStore)
    yield instance
    instance.close()
