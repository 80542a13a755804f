"""An organiser's dataset: files checked before they are registered, new versions that
leave running sessions alone, removal, and the competition's description, rules and
deadline."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import Platform, second_user, targz
from helpers.scoring import RULE_SCRIPT
from nsml.client.api import ApiClient, ApiError

# waits until the test drops "go" into its working folder, reading its data before and after
READ_TWICE = """
    import os, sys, time, nsml
    path = os.path.join(nsml.DATASET_PATH, "train", "train_data")
    print("before", open(path).read().strip(), flush=True)
    open(sys.argv[1], "w").close()
    for _ in range(300):
        if os.path.exists("go"):
            break
        time.sleep(0.1)
    print("after", open(path).read().strip(), flush=True)
    print("cache key", os.environ["NSML_DATASET_VERSION"], flush=True)
"""


def _folder(
    base: Path, name: str, train: bytes, labels: bytes, test: tuple[bytes, bytes] | None = None
) -> Path:
    folder = base / name
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "train_data").write_bytes(train)
    (folder / "train" / "train_label").write_bytes(labels)
    if test is not None:
        (folder / "test").mkdir()
        (folder / "test" / "test_data").write_bytes(test[0])
        (folder / "test" / "test_label").write_bytes(test[1])
    return folder


def _api(platform: Platform) -> ApiClient:
    info = platform.server_info()
    return ApiClient(info["url"], info["token"])


def _ready_marker(platform: Platform, marker: str, timeout: float = 60) -> Path:
    """The working folder of the session that created ``marker`` in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list((platform.home / "sessions").glob(f"*/work/{marker}"))
        if found:
            return found[0].parent
        time.sleep(0.1)
    raise AssertionError(f"no session created {marker} in {timeout}s")


def _stored_datasets(platform: Platform) -> set[str]:
    root = platform.home / "datasets"
    return {p.name for p in root.iterdir()} | {p.name for p in (root / ".versions").glob("*")}


TRAPS = {
    "latin1": (b"caf\xe9\n", b"1\n", None, "train/train_data line 1 is not UTF-8"),
    "yesno": (b"a\nb\n", b"1\n0\n", (b"x\ny\n", b"yes\nno\n"), "test/test_label line 1 is not a number"),
    "nanlabel": (b"a\nb\n", b"1\nnan\n", None, "train/train_label line 2 is not a finite number"),
    "blank": (b"a\nb\n", b"1\n\n", None, "train/train_label line 2 is empty"),
    "uneven": (
        b"a\nb\n",
        b"1\n0\n",
        (b"x\ny\n", b"1\n"),
        "test/test_data has 2 lines but test/test_label has 1",
    ),
    "linesep": (b"a\n", b"1\n", ("x\u2028y\n".encode(), b"1\n"), "test/test_data line 1 holds a line break"),
}


def test_bad_files_are_refused_by_cli_and_server_before_anything_is_stored(
    platform: Platform, tmp_path: Path
) -> None:
    platform.nsml("dataset", "ls")  # the server is up
    before = _stored_datasets(platform)
    with _api(platform) as api:
        for trap, (train, labels, test, message) in TRAPS.items():
            folder = _folder(tmp_path, trap, train, labels, test)
            if trap in ("latin1", "yesno"):  # the CLI checks with the server's own code
                result = platform.nsml("dataset", "push", trap, str(folder), check=False)
                assert result.returncode == 1 and message in result.stderr, result.stderr
                assert len(result.stderr.strip().splitlines()) == 1
            # the server is the authority: the folder sent past the CLI's check
            files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
            with pytest.raises(ApiError) as refused:
                api.create_dataset(trap, "accuracy", "", targz(files))
            assert refused.value.status == 400 and message in refused.value.detail
            assert "caf" not in refused.value.detail and "yes" not in refused.value.detail  # no contents
    assert set(TRAPS).isdisjoint(d["name"] for d in platform.json("dataset", "ls"))
    assert _stored_datasets(platform) == before
    assert "Traceback" not in (platform.home / "server.log").read_text()


def test_replace_makes_a_version_that_running_sessions_never_see(platform: Platform, tmp_path: Path) -> None:
    old = _folder(tmp_path, "old", b"old\n", b"1\n", (b"t\n", b"1\n"))
    platform.nsml("dataset", "push", "versioned", str(old), "--description", "first")
    taken = platform.nsml("dataset", "push", "versioned", str(old), check=False)
    assert taken.returncode == 1 and "--replace" in taken.stderr
    running = platform.run(platform.project("read_twice", READ_TWICE), "versioned", "ready-replace")
    work = _ready_marker(platform, "ready-replace")

    new = _folder(tmp_path, "new", b"new\nnewer\n", b"0\n1\n", (b"t\nu\n", b"0\n1\n"))
    replaced = platform.json("dataset", "push", "versioned", str(new), "--replace")
    assert (replaced["version"], replaced["train_size"], replaced["description"]) == (2, 2, "first")
    (work / "go").touch()
    assert platform.wait(running)["status"] == "exited"
    old_log = platform.nsml("logs", running).stdout.splitlines()
    assert old_log[:2] == ["before old", "after old"]

    fresh = platform.run(platform.project("read_fresh", READ_TWICE), "versioned", "ready-fresh")
    (_ready_marker(platform, "ready-fresh") / "go").touch()
    assert platform.wait(fresh)["status"] == "exited"
    new_log = platform.nsml("logs", fresh).stdout.splitlines()
    assert new_log[:2] == ["before new", "newer"]
    old_key, new_key = (
        next(line for line in log if line.startswith("cache key")) for log in (old_log, new_log)
    )
    assert old_key != new_key  # nsml.cache entries of the old files are not reused
    # no session holds version 2 any more: a third version leaves only itself on disk
    platform.nsml("dataset", "push", "versioned", str(old), "--replace")
    kept = platform.home / "datasets" / ".versions" / "versioned"
    assert sorted(p.name for p in kept.iterdir()) == ["3"]
    assert platform.json("dataset", "show", "versioned")["version"] == 3

    wrong = platform.nsml(
        "dataset", "push", "versioned", str(old), "--replace", "--metric", "mse", check=False
    )
    assert wrong.returncode == 1 and "keeps its metric" in wrong.stderr
    missing = platform.nsml("dataset", "push", "nothing_here", str(old), "--replace", check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


@pytest.fixture(scope="module")
def participant(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    return second_user(platform, "bob", tmp_path_factory.mktemp("participant"))


def _participant_api(platform: Platform, participant: Platform) -> ApiClient:
    token = json.loads((participant.home / "client.json").read_text())["token"]
    return ApiClient(platform.server_info()["url"], token)


def test_rm_refuses_while_sessions_run_and_keeps_them_listable(
    platform: Platform, participant: Platform, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, "doomed", b"a\n", b"1\n")
    platform.nsml("dataset", "push", "doomed", str(folder))
    mine = platform.run(platform.project("hold_mine", READ_TWICE), "doomed", "ready-mine")
    theirs = participant.run(participant.project("hold_theirs", READ_TWICE), "doomed", "ready-theirs")
    with _participant_api(platform, participant) as api, pytest.raises(ApiError) as denied:
        api.remove_dataset("doomed", force=True)
    assert denied.value.status == 403 and "only the organiser of doomed" in denied.value.detail
    refused = platform.nsml("dataset", "rm", "doomed", check=False)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    _ready_marker(platform, "ready-mine")
    platform.nsml("dataset", "rm", "doomed", "--force")
    assert not (platform.home / "datasets" / "doomed").exists()
    assert not (platform.home / "datasets" / ".versions" / "doomed").exists()
    for client, name in ((platform, mine), (participant, theirs)):
        session = client.wait(name)  # `ps -a` still lists it, as the owner left it
        assert session["status"] == "stopped"
    assert "doomed was removed" in (platform.session(mine)["reason"] or "")  # it was running
    with _api(platform) as api:
        assert "doomed" not in {d.name for d in api.list_datasets()}
        assert [s.name for s in api.list_sessions(dataset="doomed", all=True)] == [mine]
    assert platform.nsml("logs", mine).stdout.startswith("before a")
    reused = platform.nsml("dataset", "push", "doomed", str(folder), check=False)
    assert reused.returncode == 1 and "was removed" in reused.stderr
    run_again = platform.nsml("run", "-d", "doomed", cwd=platform.workdir / "hold_mine", check=False)
    assert run_again.returncode == 1 and "not found" in run_again.stderr


def test_description_rules_and_a_deadline_that_closes_the_competition(
    platform: Platform, participant: Platform, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, "comp", b"a\nb\n", b"0\n1\n", (b"x\ny\nz\nw\n", b"0\n1\n1\n0\n"))
    platform.nsml("dataset", "push", "comp", str(folder))
    session = platform.run(platform.project("submit_comp", RULE_SCRIPT), "comp", "--task kin --behave sleep")
    description, rules = tmp_path / "description.md", tmp_path / "rules.md"
    description.write_text("# Guess the class\n\nPredict **0** or **1**.\n")
    rules.write_text("## Rules\n\n- one account per person\n")
    later = (datetime.now(timezone.utc) + timedelta(days=30)).astimezone(timezone(timedelta(hours=9)))
    platform.nsml(
        "dataset", "set", "comp", "--description-file", str(description), "--rules-file", str(rules),
        "--deadline", later.isoformat(),
    )  # fmt: skip
    shown = platform.json("dataset", "show", "comp")
    assert shown["rules"] == rules.read_text() and shown["description"].startswith("# Guess")
    assert datetime.fromisoformat(shown["deadline"]) == later and shown["closed"] is False
    text = platform.nsml("dataset", "show", "comp").stdout
    assert "one account per person" in text and "**" not in text  # rendered, not raw
    assert "Guess the class" in platform.nsml("dataset", "ls").stdout  # its first line

    naive = platform.nsml("dataset", "set", "comp", "--deadline", "2030-01-01T00:00:00", check=False)
    assert naive.returncode == 1 and "time zone" in naive.stderr
    rules.write_text("x" * (64 * 1024 + 1))
    huge = platform.nsml("dataset", "set", "comp", "--rules-file", str(rules), check=False)
    assert huge.returncode == 1 and "65536" in huge.stderr
    with _api(platform) as api:
        for options, status, words in (
            ({"rules": "x" * (64 * 1024 + 1)}, 422, "rules"),
            ({"deadline": "2020-01-01T00:00:00Z"}, 400, "in the past"),
        ):
            with pytest.raises(ApiError) as refused:
                api.configure_dataset("comp", **options)
            assert refused.value.status == status and words in refused.value.detail
    with _participant_api(platform, participant) as api, pytest.raises(ApiError) as denied:
        api.configure_dataset("comp", rules="mine now")
    assert denied.value.status == 403 and "only the organiser of comp" in denied.value.detail

    assert platform.wait(session)["status"] == "exited"
    with _api(platform) as api:
        scoring = api.submit(session, "best", 1)  # its infer sleeps: it is being scored meanwhile
        archive = targz({"train/train_data": b"a\n", "train/train_label": b"1\n"})
        for attempt in (
            lambda: api.remove_dataset("comp", force=True),
            lambda: api.create_dataset("comp", None, "", archive, replace=True),
        ):
            with pytest.raises(ApiError) as busy:
                attempt()
            assert busy.value.status == 409 and "being scored" in busy.value.detail
        api.cancel_submission(scoring.id)
        soon = datetime.now(timezone.utc) + timedelta(seconds=1)
        api.configure_dataset("comp", deadline=soon.isoformat())
        while not api.get_dataset("comp").closed:
            assert datetime.now(timezone.utc) < soon + timedelta(seconds=10), "the deadline did not close it"
            time.sleep(0.1)
        assert api.board("comp").ranked_by == "private"
    late = platform.nsml("submit", session, "best", check=False)
    assert late.returncode == 1 and "closed" in late.stderr
    reopen = platform.nsml("dataset", "set", "comp", "--deadline", later.isoformat(), check=False)
    assert reopen.returncode == 1 and "has ended" in reopen.stderr
