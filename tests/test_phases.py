"""Competition phases, final selection and re-runs, through the real CLI.

One league of three phases, as the 2018 hackathon ran: a preliminary round, a second
round the organiser starts by hand, and a blind final that starts by itself on its date.
A participant's selected submissions follow them from phase to phase without their
doing anything; a re-run keeps the earlier scores; the closed competition ranks each
participant by their best selected submission.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import Platform, rule_prediction, second_user, train_rule_session
from nsml.store import Conflict

if TYPE_CHECKING:
    from nsml.store.sql.store import SqlStore

INPUTS = [f"질문 {i}\t질문 {i + 1}" for i in range(24)]


def _test_folder(base: Path, name: str, right: int) -> Path:
    """A test folder whose first ``right`` labels are what RULE_SCRIPT predicts."""
    folder = base / name
    folder.mkdir(parents=True)
    (folder / "test_data").write_text("".join(f"{t}\n" for t in INPUTS))
    labels = [int(rule_prediction(t, "kin")) for t in INPUTS]
    labels = labels[:right] + [1 - x for x in labels[right:]]
    (folder / "test_label").write_text("".join(f"{x}\n" for x in labels))
    return folder


def _poll(check: Any, what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {timeout} s")


def _mine(client: Platform) -> list[dict[str, Any]]:
    return list(client.json("board", "league", "--private")["submissions"])


def _refused(client: Platform, *args: str) -> str:
    result = client.nsml(*args, check=False)
    assert result.returncode == 1, result.stdout
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    return result.stderr


@pytest.fixture(scope="module")
def league(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The league with its first phase, and bob, a participant."""
    base = tmp_path_factory.mktemp("league")
    folder = base / "data"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "train_data").write_text("a\tb\nc\td\n")
    (folder / "train" / "train_label").write_text("1\n0\n")
    _test_folder(folder, "test", 24)
    platform.nsml("dataset", "push", "league", str(folder))
    platform.nsml("phase", "add", "league", "prelim", "--test", str(_test_folder(base, "prelim", 24)))
    platform.nsml("phase", "add", "league", "semi", "--test", str(_test_folder(base, "semi", 18)))
    return second_user(platform, "bob", base)


def test_phases_selection_reruns_and_the_final_ranking(
    platform: Platform, league: Platform, tmp_path: Path
) -> None:
    bob = league
    phases = platform.json("phase", "ls", "league")
    assert [(p["name"], p["state"], p["test_size"]) for p in phases] == [
        ("prelim", "running", 24),
        ("semi", "upcoming", 24),
    ]
    bob_session = train_rule_session(bob, "league", "kin")
    # the organiser's submission fails to load its checkpoint: one submission of somebody else
    # to try to select, and nothing of theirs to carry over (keeps the test short)
    own_session = train_rule_session(platform, "league", "kin", "loadfail")
    first = bob.json("submit", bob_session, "best")
    second = bob.json("submit", bob_session, "best")
    assert platform.nsml("submit", own_session, "best", check=False).returncode == 1
    [theirs] = platform.json("board", "league", "--private")["submissions"]
    assert first["phase"] == "prelim" and first["public_score"] == 1.0
    board = bob.json("board", "league")
    assert board["phase"] == "prelim" and not board["blind"]
    assert [(r["owner"], r["score"], r["selected"]) for r in board["rows"]] == [("bob", 1.0, True)]

    # what a participant may not do
    assert "only the organiser" in _refused(bob, "phase", "start", "league", "semi")
    assert "only the organiser" in _refused(bob, "submission", "rerun", "league", "--all")
    bobs_test = str(_test_folder(tmp_path, "bobs", 24))
    assert "only the organiser" in _refused(bob, "phase", "add", "league", "x", "--test", bobs_test)
    assert "not one of yours" in _refused(bob, "submission", "select", "league", str(theirs["id"]))
    too_many = _refused(
        bob, "submission", "select", "league", str(first["id"]), str(second["id"]), str(theirs["id"])
    )
    assert "at most 2" in too_many
    chosen = bob.json("submission", "select", "league", str(first["id"]))
    assert {s["id"]: s["selected"] for s in chosen} == {first["id"]: True, second["id"]: False}

    # the organiser starts the second round: bob's one selection is carried and re-scored there
    platform.nsml("phase", "start", "league", "semi")
    carried = _poll(
        lambda: [s for s in _mine(bob) if s["phase"] == "semi" and s["status"] == "scored"], "the carry-over"
    )
    assert [(s["carried_from"], s["public_score"] is not None) for s in carried] == [(first["id"], True)]
    assert "already started" in _refused(platform, "phase", "start", "league", "semi")
    semi_board = bob.json("board", "league")
    assert semi_board["phase"] == "semi" and [r["owner"] for r in semi_board["rows"]] == ["bob"]
    assert bob.json("board", "league", "--phase", "prelim")["rows"][0]["score"] == 1.0

    # a re-run after the organiser fixed the prelim labels: new score, old one kept, no limit used
    labels = platform.home / "datasets" / "league" / "phases" / "prelim" / "test" / "test_label"
    labels.write_text((_test_folder(tmp_path, "fixed", 12) / "test_label").read_text())
    used_before = bob.json("board", "league", "--private")["limits"]
    platform.nsml("submission", "rerun", "league", str(second["id"]))
    rerun = _poll(
        lambda: [s for s in _mine(bob) if s["id"] == second["id"] and s["score_history"]], "the re-run"
    )[0]
    assert rerun["public_score"] != 1.0 and rerun["status"] == "scored"
    [old] = rerun["score_history"]
    assert old["public_score"] == 1.0 and old["reason"].startswith("re-run by")
    assert bob.json("board", "league", "--private")["limits"] == used_before

    # the blind final starts by itself on its date
    starts = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
    platform.nsml(
        "phase",
        "add",
        "league",
        "final",
        "--test",
        str(_test_folder(tmp_path, "final", 6)),
        "--blind",
        "--starts",
        starts,
    )
    _poll(
        lambda: platform.json("phase", "ls", "league")[2]["state"] == "running",
        "the final's start",
        timeout=30,
    )
    final = _poll(
        lambda: [s for s in _mine(bob) if s["phase"] == "final" and s["status"] == "scored"],
        "the final's carry-over",
    )
    assert [s["public_score"] for s in final] == [None]  # blind: bob sees no score of his own
    blind = bob.json("board", "league")
    assert blind["blind"] and all(r["score"] is None for r in blind["rows"])
    assert "blind until" in bob.nsml("board", "league").stdout

    # closing reveals the private ranking of each participant's selection, and freezes it
    platform.nsml("dataset", "close", "league")
    closed = bob.json("board", "league")
    assert closed["ranked_by"] == "private" and not closed["blind"]
    assert all(r["score"] is not None for r in closed["rows"])
    assert "frozen" in _refused(bob, "submission", "select", "league", str(final[0]["id"]))


def test_the_store_keeps_phases_selections_and_score_history(store: SqlStore) -> None:
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    owner = store.get_or_create_user("ann")
    dataset = store.create_dataset("cup", owner.id, "accuracy", "", 2, 4, 1)
    prelim = store.create_phase(dataset.id, "prelim", 4, at, daily_limit=1)
    final = store.create_phase(dataset.id, "final", 6, at, blind=True)
    assert [(p.name, p.index, p.blind, p.daily_limit) for p in store.list_phases("cup")] == [
        ("prelim", 0, False, 1),
        ("final", 1, True, None),
    ]
    with pytest.raises(Conflict):
        store.create_phase(dataset.id, "final", 6, at)
    session = store.create_session(owner.id, dataset.id, "main.py", [], "", 0, "ann-1")
    limited = store.get_dataset("cup")
    first = store.create_submission(limited, owner.id, session, "1", 4, at, prelim.id)
    second = store.create_submission(limited, owner.id, session, "1", 4, at, prelim.id)
    assert (first.phase, first.selected, first.score_history) == ("prelim", False, [])
    store.select_submissions(dataset.id, owner.id, prelim.id, [second.id])
    store.select_submissions(dataset.id, owner.id, prelim.id, [first.id])  # replaces
    assert [s.selected for s in store.list_submissions("cup")] == [True, False]
    carried = store.carry_submission(first.id, final.id, 6, at)
    assert (carried.phase, carried.carried_from, carried.status.value) == ("final", first.id, "queued")
    assert store.count_submissions(dataset.id, owner.id, None, final.id) == (0, None)  # free
    assert store.count_submissions(dataset.id, owner.id, None, prelim.id)[0] == 2
    store.update_submission(first.id, status="scored", public_score=0.5, private_score=0.25, finished_at=at)
    rescored = store.record_rescore(first.id, 0.75, 1.0, "re-run by ann", at + timedelta(hours=1))
    assert (rescored.public_score, rescored.private_score) == (0.75, 1.0)
    assert rescored.score_history == [
        {"public_score": 0.5, "private_score": 0.25, "scored_at": at.isoformat(), "reason": "re-run by ann"}
    ]
    started = store.mark_phase_started(final.id, at)
    assert started.started_at == at


def test_bad_phases_are_refused_in_one_line(platform: Platform, league: Platform, tmp_path: Path) -> None:
    good = str(_test_folder(tmp_path, "good", 24))
    uneven = _test_folder(tmp_path, "uneven", 24)
    (uneven / "test_label").write_text("1\n0\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        ("phase", "add", "league", "late", "--test", good, "--starts", "next tuesday"): "not an ISO time",
        (
            "phase",
            "add",
            "league",
            "late",
            "--test",
            good,
            "--starts",
            "2027-01-02",
            "--ends",
            "2027-01-01",
        ): ("must end after it starts"),
        ("phase", "add", "league", "late", "--test", str(uneven)): "they must match",
        ("phase", "add", "league", "late", "--test", str(empty)): "no test_data and test_label",
        ("phase", "add", "league", "prelim", "--test", good): "already has a phase prelim",
        ("phase", "start", "league", "nosuch"): "has no phase 'nosuch'",
        ("board", "league", "--phase", "nosuch"): "has no phase 'nosuch'",
    }
    for args, words in cases.items():
        assert words in _refused(platform, *args), args
    assert "late" not in [p["name"] for p in platform.json("phase", "ls", "league")]


def test_the_janitor_starts_phases_on_its_schedule_and_survives_a_failure(tmp_path: Path) -> None:
    """Its tick calls the phase upkeep (``PhaseService.advance_all`` in the server); an
    upkeep that raises does not end the schedule."""
    from nsml.artifacts import FileArtifactStore
    from nsml.server.janitor import Janitor
    from nsml.server.settings import ServerSettings
    from nsml.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'nsml.db'}")
    ticks: list[float] = []

    def upkeep() -> None:
        ticks.append(time.monotonic())
        raise RuntimeError("a failing upkeep")

    settings = ServerSettings(home=tmp_path, janitor_interval_s=0.05)
    janitor = Janitor(store, FileArtifactStore(tmp_path), settings, on_tick=upkeep)
    janitor.start()
    try:
        _poll(lambda: len(ticks) >= 3, "three ticks", timeout=20)
    finally:
        janitor.stop()
        store.close()
