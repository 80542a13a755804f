"""Crashes the platform survives, each run for real: the server SIGKILLed half-way through
a checkpoint save, a report batch, a submission's scoring and a dataset push, then started
again on the same home; PostgreSQL restarted under load; the disk filling during a save.

The kill lands at a named point of the operation (``nsml.fault_points``): the test arms
the point through the server's control file, the server marks that it got there and
waits, and the test kills it then, never sooner or later.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from conftest import NSML, ForegroundServer, Platform, client_platform, train_rule_session
from helpers.faults import CrashableServer

# saves one checkpoint (argv[2]) of argv[1] random bytes, then exits
SAVER = """
    import os, sys, nsml

    def save(dir_name, **kwargs):
        os.makedirs(dir_name, exist_ok=True)
        with open(os.path.join(dir_name, "weights.bin"), "wb") as handle:
            handle.write(os.urandom(int(sys.argv[1])))

    nsml.bind(save=save, load=lambda dir_name, **kwargs: None)
    nsml.save(sys.argv[2])
    print("saved", sys.argv[2], flush=True)
"""
SESSION_RESTART_REASON = "the server stopped while the session was running"
# a restarted server sweeps at once what a crash left (no sweep while a test writes)
SWEEP_AT_START = {"NSML_STALE_UPLOAD_S": "0", "NSML_JANITOR_INTERVAL_S": "3600"}


@pytest.fixture(scope="module")
def crash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrashableServer]:
    base = tmp_path_factory.mktemp("faults")
    server = CrashableServer(base / "home", env={"NSML_DEFAULT_DAILY_LIMIT": "0", **SWEEP_AT_START})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def user(crash: CrashableServer, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The server's operator, driving it with the CLI across its restarts."""
    client = client_platform(tmp_path_factory.mktemp("faults-client"), "admin")
    client.env.update(NSML_SERVER_URL=crash.url, NSML_TOKEN=crash.token)
    return client


def start_cli(user: Platform, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """A command that will meet the paused server; the test kills the server under it."""
    return subprocess.Popen(
        [NSML, *args], cwd=cwd or user.workdir, env=user.env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def assert_cut_off(command: subprocess.Popen[str]) -> None:
    """The command the crash cut off failed with an error line, not a traceback (bounded)."""
    try:
        _, err = command.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        command.kill()
        _, err = command.communicate()
    lines = err.strip().splitlines()
    assert command.returncode != 0 and lines and lines[-1].startswith("Error: "), err


def checkpoints(user: Platform, name: str) -> list[str]:
    return [c["name"] for c in user.json("model", "ls", name)]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g} s")
        time.sleep(0.1)


def test_a_checkpoint_save_killed_half_way_is_never_listed(crash: CrashableServer, user: Platform) -> None:
    folder = user.project("saver", SAVER)
    kept = user.run(folder, "demo_kin", "1000 early")
    assert user.wait(kept)["status"] == "exited", user.nsml("logs", kept).stdout

    crash.arm("checkpoint_commit")  # the next checkpoint stops once in place, unlisted
    doomed = user.run(folder, "demo_kin", "300000 doomed")
    crash.kill_when_paused()
    crash.start()

    session = user.wait(doomed)
    assert session["status"] == "failed" and session["reason"] == SESSION_RESTART_REASON, session
    assert checkpoints(user, doomed) == []
    assert checkpoints(user, kept) == ["early"]
    # what the crash left on disk goes (this server's janitor counts nothing too young)
    stored = crash.home / "checkpoints"
    wait_until(lambda: not list(stored.glob("*/doomed")), "the unlisted checkpoint's folder removed")
    [early] = stored.glob("*/early/weights.bin")
    assert early.stat().st_size == 1000


def dataset_folder(base: Path, examples: int) -> Path:
    """A small MSE competition folder with ``examples`` training lines."""
    folder = base / f"data-{examples}"
    (folder / "train").mkdir(parents=True, exist_ok=True)
    (folder / "test").mkdir(exist_ok=True)
    (folder / "train" / "train_data").write_text("".join(f"좋다 {i}\n" for i in range(examples)))
    (folder / "train" / "train_label").write_text("".join(f"{1 + i % 10}\n" for i in range(examples)))
    (folder / "test" / "test_data").write_text("".join(f"리뷰 {i}\n" for i in range(20)))
    (folder / "test" / "test_label").write_text("".join(f"{1 + i % 10}\n" for i in range(20)))
    return folder


def datasets(user: Platform) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in user.json("dataset", "ls")}


def test_a_dataset_push_killed_half_way_leaves_no_half_dataset(
    crash: CrashableServer, user: Platform, tmp_path: Path
) -> None:
    old, new = dataset_folder(tmp_path, 4), dataset_folder(tmp_path, 9)
    user.nsml("dataset", "push", "crash_kept", str(old), "--metric", "mse")

    crash.arm("dataset_commit")  # a new dataset: files in place, not registered
    pushing = start_cli(user, "dataset", "push", "crash_fresh", str(new), "--metric", "mse")
    crash.kill_when_paused()
    assert_cut_off(pushing)
    crash.start()
    fresh = crash.home / "datasets" / "crash_fresh"
    wait_until(lambda: not (fresh.is_symlink() or fresh.exists()), "the unregistered dataset's files removed")
    crash.arm("dataset_commit")  # a new version: current on disk, not recorded
    pushing = start_cli(user, "dataset", "push", "crash_kept", str(new), "--replace")
    crash.kill_when_paused()
    assert_cut_off(pushing)
    crash.start()

    listed = datasets(user)
    assert "crash_fresh" not in listed
    assert (listed["crash_kept"]["version"], listed["crash_kept"]["train_size"]) == (1, 4)
    kept = crash.home / "datasets" / "crash_kept"
    wait_until(
        lambda: (kept / "train" / "train_data").read_text().count("\n") == 4, "the old version current"
    )
    # the name is free again and the dataset takes new versions: nothing half-done blocks them
    user.nsml("dataset", "push", "crash_fresh", str(new), "--metric", "mse")
    user.nsml("dataset", "push", "crash_kept", str(new), "--replace")
    listed = datasets(user)
    assert listed["crash_fresh"]["train_size"] == 9
    assert (listed["crash_kept"]["version"], listed["crash_kept"]["train_size"]) == (2, 9)


def requests_while(
    server: ForegroundServer, until: Callable[[list[httpx.Response]], bool]
) -> list[httpx.Response]:
    """Answers to reads that touch the database, four at a time, until ``until`` holds (bounded)."""
    answers: list[httpx.Response] = []
    deadline = time.monotonic() + 60
    with ThreadPoolExecutor(4) as pool:
        while not until(answers):
            assert time.monotonic() < deadline, [a.status_code for a in answers[-20:]]
            batch = [
                pool.submit(server.get, path, server.token, timeout=30)
                for path in ("/datasets", "/sessions") * 2
            ]
            answers += [future.result() for future in batch]
    return answers


# a session that ends while the test keeps the database down
ENDER = """
    import sys, time
    print("STARTED", sys.argv[1], flush=True)
    time.sleep(8)
"""


def process_with(marker: str) -> bool:
    """Whether a process has ``marker`` on its command line (a session's, seen from the host)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def test_postgres_restarted_under_load_answers_503_with_a_retry_hint_then_serves_again(
    tmp_path: Path,
) -> None:
    from postgres import binaries, postgres_instance

    if binaries() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but PostgreSQL is not installed; `make test` installs it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    with (
        postgres_instance() as database,
        ForegroundServer(tmp_path / "home", "pg-token", "--db", database.url) as server,
    ):
        client = client_platform(tmp_path, "pg-user")
        client.env.update(NSML_SERVER_URL=server.url, NSML_TOKEN=server.token)
        ender = client.run(client.project("ender", ENDER), args="pg-ender")
        wait_until(lambda: "STARTED" in client.nsml("logs", ender).stdout, "the session started", 60)
        assert requests_while(server, lambda answers: len(answers) >= 8)[-1].status_code == 200
        database.stop()
        down = requests_while(server, lambda answers: sum(a.status_code == 503 for a in answers) >= 8)
        during = client.nsml("ps", "--json", check=False)
        wait_until(lambda: not process_with("pg-ender"), "the session ended during the outage", 60)
        database.start()
        up = requests_while(server, lambda answers: any(a.status_code == 200 for a in answers[-4:]))
        assert server.process.poll() is None  # the same process served throughout
        # its end, reported while the database was down, was recorded once it was back
        ended = client.wait(ender, timeout=60)
        assert (ended["status"], ended["exit_code"]) == ("exited", 0), ended

    assert {a.status_code for a in down + up} <= {200, 503}, [
        a.text for a in down + up if a.status_code not in (200, 503)
    ]
    for answer in (a for a in down if a.status_code == 503):
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["detail"].startswith("the database is not answering")
    assert during.returncode != 0 and "the database is not answering" in during.stderr
    assert len(during.stderr.strip().splitlines()) == 1, during.stderr
    assert "internal server error" not in server.output()


# saves a small checkpoint, then one larger than the disk has room for, and says how that went
FILLER = """
    import os, sys, nsml

    size = {"small": 1000, "big": 3 * 1024 * 1024}

    def save(dir_name, iteration=None, **kwargs):
        os.makedirs(dir_name, exist_ok=True)
        with open(os.path.join(dir_name, "weights.bin"), "wb") as handle:
            handle.write(os.urandom(size[current]))

    nsml.bind(save=save, load=lambda dir_name, **kwargs: None)
    for current in ("small", "big"):
        try:
            nsml.save(current)
            print("saved", current, flush=True)
        except Exception as exc:
            print("refused", current, type(exc).__name__, exc, flush=True)
"""


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs the tests as root)")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def test_a_checkpoint_larger_than_the_free_disk_is_refused_clearly_and_nothing_breaks(
    crash: CrashableServer, user: Platform
) -> None:
    folder = user.project("filler", FILLER)
    with small_disk(crash.home / "checkpoints", "2m") as disk:
        name = user.run(folder)
        assert user.wait(name)["status"] == "exited", user.nsml("logs", name).stdout
        log = user.nsml("logs", name).stdout
        assert "saved small" in log, log
        [refusal] = [line for line in log.splitlines() if line.startswith("refused big")]
        assert "the server's disk is full; nothing of this request was stored" in refusal
        assert checkpoints(user, name) == ["small"]
        [stored] = [p.relative_to(disk) for p in disk.rglob("*") if p.is_file()]  # nothing half-written
        assert stored.parts[1:] == ("small", "weights.bin")
        small = crash.running.get(f"/sessions/{name}/checkpoints/small", crash.token)
        assert small.status_code == 200
        with tarfile.open(fileobj=io.BytesIO(small.content)) as tar:
            assert tar.getmember("weights.bin").size == 1000
    assert "internal server error" not in crash.running.output()


def test_a_submission_scored_when_the_server_died_fails_with_the_reason_and_is_never_scored_twice(
    crash: CrashableServer, user: Platform
) -> None:
    session = train_rule_session(user, "demo_movie", "movie")
    crash.arm("scoring_commit")  # scored, the score not yet recorded
    submitting = start_cli(user, "submit", session, "best")
    crash.kill_when_paused()
    assert_cut_off(submitting)
    crash.start()

    [lost] = user.json("board", "demo_movie", "--private")["submissions"]
    assert (lost["status"], lost["reason"]) == ("failed", "the server stopped during the evaluation"), lost
    assert lost["public_score"] is None
    # it did not count: scored again, once, the board holds both and one score
    user.nsml("submit", session, "best")
    records = user.json("board", "demo_movie", "--private")["submissions"]
    assert sorted(r["status"] for r in records) == ["failed", "scored"], records
    assert [r["id"] for r in records].count(lost["id"]) == 1


# one report sent alone, then three reported together: the second batch meets the crash
REPORTER = """
    import time, nsml

    nsml.report(step=0, train__loss=1.0)
    time.sleep(1.5)  # the SDK sends what was reported every 0.25 s
    for step in (1, 2, 3):
        nsml.report(step=step, train__loss=1.0 / (step + 1))
    time.sleep(60)
"""


def test_a_report_batch_cut_by_a_crash_is_stored_whole_or_not_at_all(
    crash: CrashableServer, user: Platform
) -> None:
    crash.arm("reports_commit:2")
    name = user.run(user.project("reporter", REPORTER))
    crash.kill_when_paused()
    crash.start()

    session = user.wait(name)
    assert session["status"] == "failed" and session["reason"] == SESSION_RESTART_REASON, session
    metrics = crash.running.get(f"/sessions/{name}/metrics", crash.token).json()
    # the first batch once; of the cut one, nothing (the session died with the server: no re-send)
    assert [(m["step"], m["key"]) for m in metrics] == [(0, "train/loss")], metrics


# three steps reported together; the session lives on past the SDK's 30 s request
# timeout, so the batch is sent again while it runs (not in the 30 s flush at exit)
RESENDER = """
    import time, nsml

    for step in (0, 1, 2):
        nsml.report(step=step, train__loss=1.0 / (step + 1))
    time.sleep(45)
"""


def test_a_report_batch_whose_answer_was_lost_is_sent_again_and_stored_once(
    crash: CrashableServer, user: Platform
) -> None:
    """The server stored the batch, then never answered (it hangs right after the commit):
    the SDK's request times out, it sends the batch again under the same id, and the
    server stores it once."""
    crash.arm("reports_stored:1")
    name = user.run(user.project("resender", RESENDER))
    session = user.wait(name, timeout=180)
    assert crash.paused.exists(), "the first answer was never held back"
    assert session["status"] == "exited", session
    metrics = crash.running.get(f"/sessions/{name}/metrics", crash.token).json()
    assert sorted((m["step"], m["key"]) for m in metrics) == [(s, "train/loss") for s in (0, 1, 2)], metrics
    crash.start()  # the held-back request ends with this server


class Unanswered(Exception):
    """What the SDK's client raises when the server does not answer (``ApiError``'s shape)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


def test_the_sdk_sends_a_batch_again_while_the_server_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through a restart (no answer, then 503s while its database comes back): more tries
    than a refused batch gets, and each report arrives once."""
    from nsml.sdk import reporting
    from nsml.sdk.reporting import Reporter

    monkeypatch.setattr(reporting, "FIRST_RETRY_S", 0.01)
    monkeypatch.setattr(reporting, "MAX_RETRY_S", 0.01)
    received: list[list[dict[str, Any]]] = []
    failures = iter([ConnectionError("restarting"), *(Unanswered(0) for _ in range(5)), Unanswered(503)])

    ids: set[str] = set()

    def send(batch: list[dict[str, Any]], batch_id: str) -> None:
        ids.add(batch_id)
        failure = next(failures, None)
        if failure is not None:
            raise failure
        received.append(batch)

    reporter = Reporter(send)
    for step in range(3):
        reporter.add({"step": step, "metrics": {"loss": 1.0}})
    assert reporter.flush(timeout=10)
    assert [r["step"] for batch in received for r in batch] == [0, 1, 2]  # all of it, once
    assert len(ids) == 1  # every try under one id, so the server can tell a repeat


def test_the_sdk_gives_up_on_a_batch_the_server_refuses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from nsml.sdk import reporting
    from nsml.sdk.reporting import Reporter

    monkeypatch.setattr(reporting, "FIRST_RETRY_S", 0.01)
    tries: list[int] = []

    def refuse(batch: list[dict[str, Any]], batch_id: str) -> None:
        tries.append(len(batch))
        raise Unanswered(400)

    reporter = Reporter(refuse)
    reporter.add({"step": 0, "metrics": {"loss": 1.0}})
    assert reporter.flush(timeout=10)
    assert len(tries) == reporting.RETRIES
    assert "could not send 1 metric reports: status 400" in capsys.readouterr().err


def test_the_janitor_leaves_a_push_still_being_recorded_alone(tmp_path: Path) -> None:
    """What a crash left is judged by age: files a live push installed a moment ago stay."""
    from nsml.artifacts import FileArtifactStore, dataset_versions
    from nsml.server.janitor import DATASET_GRACE_S, Janitor
    from nsml.server.settings import ServerSettings
    from nsml.store import open_store

    home = tmp_path / "home"
    store = open_store(f"sqlite:///{tmp_path / 'nsml.db'}")
    try:
        artifacts = FileArtifactStore(home)
        janitor = Janitor(store, artifacts, ServerSettings(home=home))
        owner = store.get_or_create_user("organiser")
        for version, examples in ((1, 4), (2, 9)):
            staged = dataset_folder(tmp_path / str(version), examples)
            artifacts.keep_dataset(staged, "cut", version)
        store.create_dataset("cut", owner.id, "mse", "", 4, 20, 100)  # version 2: not recorded
        artifacts.keep_dataset(dataset_folder(tmp_path / "new", 3), "unrecorded")

        janitor.sweep()  # both a moment old: a push may still be recording them
        assert dataset_versions.current_version(home / "datasets", "cut") == 2
        assert (home / "datasets" / "unrecorded").is_symlink()

        janitor.sweep(now=time.time() + DATASET_GRACE_S + 1)  # as a crash left them
        assert dataset_versions.current_version(home / "datasets", "cut") == 1
        assert not (home / "datasets" / ".versions" / "cut" / "2").exists()
        assert not (home / "datasets" / "unrecorded").is_symlink()
        assert dataset_versions.stored_names(home / "datasets") == {"cut"}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("failure", "status", "detail"),
    [
        (OperationalError("SELECT 1", {}, Exception("server closed the connection")), 503, "retry in 5 s"),
        (OSError(errno.ENOSPC, "No space left on device"), 507, "the server's disk is full"),
        (OSError(errno.EACCES, "Permission denied"), 500, "internal server error"),
    ],
)
def test_what_a_failed_resource_answers(failure: Exception, status: int, detail: str) -> None:
    """Wrapped as a service wraps it (``raise ... from``), the cause still decides."""
    from nsml.server.guard import RequestGuard

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        try:
            raise failure
        except Exception as exc:
            raise RuntimeError("while saving") from exc

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=RequestGuard(broken))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/api/v1/datasets")

    response = asyncio.run(call())
    assert response.status_code == status and detail in response.json()["detail"]
    assert "\n" not in response.json()["detail"]
    assert response.headers.get("Retry-After") == ("5" if status == 503 else None)
