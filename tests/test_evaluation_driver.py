"""The evaluation driver against a fake process: the conversation's rules and the scoring,
without a server, a runner or a sandbox."""

from __future__ import annotations

import socket
import struct
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from nsml import wire
from nsml.evaluation import scoring
from nsml.evaluation.driver import (
    NOT_PAUSED,
    REPLY_OVERHEAD_BYTES,
    EvaluationFailed,
    ReplyBudget,
    evaluation_argv,
    predict,
)
from nsml.evaluation.log import WITHHELD_ERROR, WITHHELD_TAIL
from nsml.evaluation.split import split_indices
from nsml.sizes import format_size
from nsml.store.entities import Dataset, Session, SessionStatus

READY = {"ready": True}
REPLIES = ReplyBudget(per_input=1000, cap=8 * 1024 * 1024)
TOO_LARGE = object()  # a reply announcing one byte more than its batch may take


class FakeProcess:
    """The other end of the channel, played by a thread: it says the first reply (the
    "ready" message) at once and each further one after reading a request, then reads
    what else comes. With ``hang_up`` it stops instead, after one more request (none
    when it had nothing to say): it exited, or a limit ended it. ``code`` is its exit
    code, None while it runs; ``limit`` is what a runner reports of a limit."""

    def __init__(
        self, *replies: Any, code: int | None = 0, limit: str | None = None, hang_up: bool = False
    ) -> None:
        self.channel, self.script = socket.socketpair()
        self.code = code
        self.limit = limit
        self.killed = False
        self.received: list[Any] = []
        self._thread = threading.Thread(target=self._serve, args=(list(replies), hang_up), daemon=True)
        self._thread.start()

    def _serve(self, replies: list[Any], hang_up: bool) -> None:
        try:
            for index, reply in enumerate(replies):
                if index:
                    self.received.append(wire.recv(self.script))
                if reply is TOO_LARGE:
                    self.script.sendall(struct.pack("!I", self.received[-1]["max_reply_bytes"] + 1))
                else:
                    self.script.sendall(wire.encode(reply))
            while not hang_up:
                self.received.append(wire.recv(self.script))
            if replies:
                self.received.append(wire.recv(self.script))
        except (wire.ChannelClosed, ConnectionError):
            pass
        finally:
            self.script.close()

    def wait(self, timeout: float | None) -> int | None:
        return -9 if self.killed else self.code

    def kill(self) -> None:
        self.killed = True

    def settle_output(self, timeout_s: float) -> None:
        pass

    def limit_reason(self) -> str | None:
        return self.limit

    def requests(self) -> list[Any]:
        """What the driver sent, in order, once it let go of the channel."""
        self._thread.join(5)
        return self.received


def _predict(process: FakeProcess, inputs: list[str], batch_size: int = 2, **options: Any) -> list[Any]:
    options.setdefault("timeout_s", 5)
    options.setdefault("on_progress", lambda done: None)
    options.setdefault("log_path", Path("/nonexistent/log.txt"))
    return predict(process, inputs, batch_size, replies=REPLIES, **options)


def _failure(process: FakeProcess, inputs: list[str], **options: Any) -> str:
    with pytest.raises(EvaluationFailed) as failed:
        _predict(process, inputs, **options)
    assert process.channel.fileno() == -1  # closed whatever happened
    return str(failed.value)


def _dataset(tmp_path: Path, labels: list[int]) -> tuple[Dataset, Path]:
    folder = tmp_path / "cup"
    for split, values in (("train", [0, 1]), ("test", labels)):
        (folder / split).mkdir(parents=True)
        (folder / split / f"{split}_data").write_text("".join(f"text {i}\n" for i in range(len(values))))
        (folder / split / f"{split}_label").write_text("".join(f"{v}\n" for v in values))
    created = datetime(2026, 11, 1, tzinfo=timezone.utc)
    return Dataset(1, "cup", "organiser", "accuracy", "", 2, len(labels), 0, created), folder


def test_a_correct_reply_is_scored(tmp_path: Path) -> None:
    labels = [1, 0, 1, 1, 0]
    dataset, folder = _dataset(tmp_path, labels)
    inputs = scoring.read_test_inputs(folder)
    guesses = [1, 0, 0, 1, 0]  # one wrong
    batches = [guesses[0:2], guesses[2:4], guesses[4:5]]
    process = FakeProcess(READY, *({"predictions": [[0.9, g] for g in b]} for b in batches))
    events: list[Any] = []
    predictions = _predict(
        process,
        inputs,
        on_progress=events.append,
        inputs_going_out=lambda: events.append("out"),
        on_stopping=lambda: events.append("stopping"),
    )
    assert predictions == [[0.9, g] for g in guesses]
    assert events == ["out", 2, 4, 5, "stopping"]
    requests = process.requests()
    assert [r["op"] for r in requests] == ["infer", "infer", "infer", "exit"]
    assert [r["inputs"] for r in requests[:3]] == [inputs[0:2], inputs[2:4], inputs[4:5]]
    assert requests[0]["max_reply_bytes"] == 2 * 1000 + REPLY_OVERHEAD_BYTES
    assert not process.killed  # it exited when told to
    public, private = scoring.score(dataset, folder, predictions)
    in_public, in_private = split_indices("cup", len(labels), dataset.public_fraction)

    def accuracy(indices: tuple[int, ...]) -> float:
        return sum(labels[i] == guesses[i] for i in indices) / len(indices)

    assert (public, private) == (accuracy(in_public), accuracy(in_private))


def test_a_reply_of_the_wrong_length_is_refused() -> None:
    process = FakeProcess(READY, {"predictions": [[0.5, 1]]}, code=None)
    message = _failure(process, ["a", "b", "c"])
    assert message == "infer returned 1 predictions for the 2 inputs 1..2; it must return one per input"
    assert process.killed  # still running after the refusal: stopped


def test_a_reply_over_the_size_limit_is_refused_unread() -> None:
    limit = REPLIES.for_batch(2)
    process = FakeProcess(READY, TOO_LARGE, code=None)
    message = _failure(process, ["a", "b"])
    assert message.startswith(f"infer's reply was over the {limit} bytes allowed for its batch (1000 bytes")
    assert str(limit + 1) not in message  # the actual size is not told
    assert process.killed


def test_the_sdk_refusing_an_oversized_reply_gets_the_same_words() -> None:
    process = FakeProcess(READY, {"error": "reply", "detail": "too big"}, code=None)
    assert _failure(process, ["a", "b"]) == REPLIES.refusal(REPLIES.for_batch(2))


def test_a_reply_budget_never_exceeds_the_operators_cap() -> None:
    assert ReplyBudget(per_input=1000, cap=5000).for_batch(10_000) == 5000


def test_a_silent_script_times_out() -> None:
    process = FakeProcess(READY, code=None)
    assert _failure(process, ["a"], timeout_s=0.2) == "the evaluation exceeded its time limit of 0.2 s"
    assert process.killed


def test_a_process_killed_at_its_memory_limit_says_so() -> None:
    reason = f"killed: memory limit {format_size(512 * 1024 * 1024)} exceeded"  # the runners' words
    process = FakeProcess(READY, code=-9, limit=reason, hang_up=True)  # killed during infer
    assert _failure(process, ["a"]) == "the evaluation was killed: memory limit 512 MiB exceeded"


def test_a_script_that_never_paused() -> None:
    assert _failure(FakeProcess(code=0, hang_up=True), ["a"]) == NOT_PAUSED


def test_a_crash_shows_the_log_tail_until_test_inputs_went_out(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("".join(f"line {i}\n" for i in range(30)) + "Traceback: boom\n")
    shown = _failure(FakeProcess(code=1, hang_up=True), ["a"], log_path=log)
    assert shown.startswith("the script exited with code 1 before serving the request:\nline 16\n")
    assert shown.endswith("Traceback: boom")
    hidden = _failure(
        FakeProcess(READY, code=1, hang_up=True), ["a"], log_path=log, inputs_going_out=lambda: None
    )
    assert hidden == f"the script exited with code 1 before serving the request:\n{WITHHELD_TAIL}"


def test_infer_errors_are_withheld_once_test_inputs_went_out(tmp_path: Path) -> None:
    error = {"error": "infer", "detail": "ZeroDivisionError: secret input"}
    shown = _failure(FakeProcess(READY, error, code=None), ["a"], log_path=tmp_path / "log.txt")
    assert shown == "the bound infer function raised an exception:\nZeroDivisionError: secret input"
    hidden = _failure(FakeProcess(READY, error, code=None), ["a"], inputs_going_out=lambda: None)
    assert hidden == WITHHELD_ERROR
    load = _failure(FakeProcess({"error": "load", "detail": "no file"}), ["a"], inputs_going_out=lambda: None)
    assert load == "the bound load function failed on the checkpoint:\nno file"  # before any input


def test_the_script_is_asked_to_serve_the_checkpoint() -> None:
    created = datetime(2026, 11, 1, tzinfo=timezone.utc)
    session = Session(
        id=3,
        owner="alice",
        dataset="cup",
        number=2,
        entry="main.py",
        args=["--lr", "0.1"],
        description="",
        status=SessionStatus.EXITED,
        exit_code=0,
        reason=None,
        gpus=0,
        created_at=created,
        started_at=None,
        ended_at=None,
        summary=None,
    )
    argv = evaluation_argv("/usr/bin/python3", session, "best")
    assert argv == [
        "/usr/bin/python3",
        "main.py",
        "--lr",
        "0.1",
        *"--pause 1 --mode test --iteration best".split(),
    ]
