"""How the web UI reads what sessions report: arguments as columns, the failing
exception of a log, which checkpoint is best, numbers and Markdown."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from nsml.server.services.session_digest import MAX_LINE_CHARS, exception_line
from nsml.server.web.render import markdown, number, templates
from nsml.server.web.tables import checkpoint_order, differing, parse_args
from nsml.store import Checkpoint

TRACEBACK = b"""epoch 3
Traceback (most recent call last):
  File "main.py", line 9, in <module>
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB
[nsml] session failed (exit code 1)
"""


def test_the_exception_line_is_the_last_one_and_bounded() -> None:
    assert (
        exception_line(TRACEBACK)
        == "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB"
    )
    assert exception_line(b"KeyError\n") == "KeyError"
    assert exception_line(b"Killed\n[nsml] session failed (exit code 137)\n") is None
    assert exception_line(b"an Error: in prose\n") is None  # not a class name at the line's start
    long = exception_line(b"ValueError: " + b"x" * 5000 + b"\n")
    assert long is not None and len(long) == MAX_LINE_CHARS and long.endswith("\u2026")
    assert exception_line(b"ValueError: \xff\xfe bad bytes\n") == "ValueError: \ufffd\ufffd bad bytes"


def test_arguments_become_columns() -> None:
    assert parse_args(["--lr", "0.1", "--fast", "--mode=train", "data.txt", "--shift", "-3"]) == {
        "lr": "0.1", "fast": "true", "mode": "train", "arg1": "data.txt", "shift": "-3",
    }  # fmt: skip
    rows = [{"a": parse_args(["--lr", "1", "--seed", "0"])}, {"a": parse_args(["--lr", "2", "--seed", "0"])}]
    assert differing(rows, "a") == ["lr"]


def test_the_best_checkpoint_follows_the_metric_or_the_loss() -> None:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    made = [
        Checkpoint(1, str(n), at, None, {"epoch": n, "valid/accuracy": acc, "train/loss": 1 / (n + 1)}, 1)
        for n, acc in enumerate([0.5, 0.9, 0.7, 0.6])
    ]
    rows, key = checkpoint_order(made, "accuracy")
    assert key == "valid/accuracy"
    assert [(r["checkpoint"].name, r["best"], r["latest"], r["folded"]) for r in rows] == [
        ("1", True, False, False), ("3", False, True, False),
        ("2", False, False, True), ("0", False, False, True),
    ]  # fmt: skip
    losses = [Checkpoint(1, str(n), at, None, {"loss": 1 / (n + 1)}, 1) for n in range(3)]
    rows, key = checkpoint_order(losses, "accuracy")
    assert key == "loss" and [r["checkpoint"].name for r in rows if not r["folded"]] == ["2"]
    rows, key = checkpoint_order([Checkpoint(1, "a", at, None, None, 1)], "accuracy")
    assert key is None and len(rows) == 1 and rows[0]["latest"]


def test_numbers_and_markdown_read_well_and_safely() -> None:
    assert [number(v) for v in (6815.0, 0.123456789, 3, None, "x", True)] == [
        "6815",
        "0.123457",
        "3",
        "",
        "x",
        "True",
    ]
    html = markdown("**rules** <script>alert(1)</script> [x](javascript:alert(1))")
    assert "<strong>rules</strong>" in html and "<script>" not in html and 'href="javascript' not in html


def test_competition_page_shows_rules_and_deadline_when_the_server_has_them() -> None:
    deadline = (datetime.now(timezone.utc) + timedelta(days=2, hours=3, minutes=30)).isoformat()
    dataset = {
        "name": "cup", "owner": "olga", "metric": "accuracy", "description": "", "train_size": 10,
        "test_size": 5, "size_bytes": 15, "closed": False, "rules": "1. one team\n2. <b>no</b> hand labels",
        "deadline": deadline, "version": 3, "max_selected": 2,
    }  # fmt: skip
    page = templates.get_template("competition.html").render(
        dataset=dataset, higher_is_better=True, my_owner="lena", organiser=False,
        me={"name": "lena", "team": None}, credits=0.0, credits_enforced=False, version="test",
    )  # fmt: skip
    assert "<ol>" in page and "&lt;b&gt;no&lt;/b&gt;" in page
    assert "2d 3h left" in page and "15 B" in page and 'data-max-selected="2"' in page
    assert 'id="organise-link"' not in page
    newer = ("rules", "deadline", "version", "max_selected")
    older = templates.get_template("competition.html").render(
        dataset={k: v for k, v in dataset.items() if k not in newer},
        higher_is_better=True, my_owner="lena", organiser=True,
        me={"name": "lena", "team": None}, credits=0.0, credits_enforced=False, version="test",
    )  # fmt: skip
    assert 'id="rules"' not in older and 'id="deadline"' not in older and 'id="organise-link"' in older
