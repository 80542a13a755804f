"""The platform's side of an evaluation: how the participant's script is started, and the
conversation with its ``nsml.paused`` that turns test inputs into predictions.

The script runs with ``--pause 1 --mode test``; it loads the checkpoint, says it is ready,
then answers one ``infer`` request per batch until told to exit. Everything here is
written against :class:`~nsml.runners.base.EvaluationProcess`, the little the conversation
needs of the running process, so that the rules (time limit, reply sizes, what a failure may say) can be
checked against a fake one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsml import wire
from nsml.artifacts.safe_io import read_tail
from nsml.evaluation.log import WITHHELD_ERROR, WITHHELD_TAIL
from nsml.runners.base import EvaluationProcess
from nsml.store.entities import Session

OUTPUT_SETTLE_S = 2.0  # for the script's last lines before "ready" to reach its log
REPLY_OVERHEAD_BYTES = 1024 * 1024  # the envelope, an error's traceback, the "ready" message
LOG_TAIL_LINES = 15
LOG_TAIL_BYTES = 64 * 1024
EXIT_WAIT_S = 10
NOT_PAUSED = (
    "the script ended without serving the request; call nsml.paused(scope=locals()) when it runs "
    "with --pause 1, after nsml.bind(...): `if config.pause: nsml.paused(scope=locals())`"
)


class EvaluationFailed(Exception):
    """The participant's code could not produce predictions; the message says why."""


def evaluation_argv(python: str, session: Session, checkpoint: str) -> list[str]:
    """The session's own command line, asked to serve ``checkpoint`` instead of training."""
    return [python, session.entry, *session.args, "--pause", "1", "--mode", "test", "--iteration", checkpoint]


@dataclass(frozen=True)
class ReplyBudget:
    """How large a reply may be: a generous budget per prediction plus room for the
    envelope, never over the operator's cap. A larger reply is refused before it is read,
    so one reply cannot balloon the server."""

    per_input: int
    cap: int

    def for_batch(self, batch: int) -> int:
        return min(batch * self.per_input + REPLY_OVERHEAD_BYTES, self.cap)

    def refusal(self, limit: int) -> str:
        """The platform's own words: the reply's actual size is not told, as a script could
        encode test inputs in it."""
        return (
            f"infer's reply was over the {limit} bytes allowed for its batch ({self.per_input} bytes "
            f"per input plus {REPLY_OVERHEAD_BYTES // 1024} KiB); infer must return one small "
            "prediction per input, e.g. (probability, label)"
        )


def predict(
    process: EvaluationProcess,
    inputs: list[str],
    batch_size: int,
    *,
    timeout_s: float,
    replies: ReplyBudget,
    log_path: Path,
    on_progress: Callable[[int], None],
    inputs_going_out: Callable[[], None] | None = None,
    on_stopping: Callable[[], None] | None = None,
) -> list[Any]:
    """Predictions of the process's ``infer`` for ``inputs``; the process is stopped and
    its channel closed whatever happens.

    ``inputs_going_out`` marks hidden test inputs: it is called before the first is sent,
    and from then on no failure message carries the process's own words (its log tail,
    its traceback), which could carry those inputs. ``on_stopping`` runs before the
    process is stopped, so whoever else may kill it (a cancel) lets go of it first."""
    conversation = _Conversation(process, timeout_s, replies, log_path, hidden=inputs_going_out is not None)
    try:
        conversation.receive(REPLY_OVERHEAD_BYTES)  # the checkpoint is loaded
        predictions: list[Any] = []
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size]
            if not conversation.sent and inputs_going_out is not None:
                process.settle_output(OUTPUT_SETTLE_S)
                inputs_going_out()
            predictions.extend(conversation.infer(batch, start))
            on_progress(len(predictions))
        wire.send(process.channel, {"op": "exit"})
        if process.wait(EXIT_WAIT_S) is None:
            process.kill()
        return predictions
    finally:
        if on_stopping is not None:
            on_stopping()
        if process.wait(0) is None:
            process.kill()
        process.channel.close()


class _Conversation:
    """One evaluation's requests and replies, against one deadline."""

    def __init__(
        self, process: EvaluationProcess, timeout_s: float, replies: ReplyBudget, log_path: Path, hidden: bool
    ) -> None:
        self.process = process
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.replies = replies
        self.log_path = log_path
        self.hidden = hidden
        self.sent = False

    @property
    def withheld(self) -> bool:
        """Whether the process's own words are kept out of failure messages."""
        return self.sent and self.hidden

    def infer(self, batch: list[str], start: int) -> list[Any]:
        """The predictions for ``batch``, the inputs from index ``start`` on."""
        self.sent = True
        limit = self.replies.for_batch(len(batch))
        wire.send(self.process.channel, {"op": "infer", "inputs": batch, "max_reply_bytes": limit})
        answer = self.receive(limit).get("predictions")
        if not isinstance(answer, list) or len(answer) != len(batch):
            count = len(answer) if isinstance(answer, list) else type(answer).__name__
            raise EvaluationFailed(
                f"infer returned {count} predictions for the {len(batch)} inputs "
                f"{start + 1}..{start + len(batch)}; it must return one per input"
            )
        return answer

    def receive(self, max_bytes: int) -> dict[str, Any]:
        if self.deadline - time.monotonic() <= 0:
            raise EvaluationFailed(self._timed_out())
        try:
            reply = wire.recv(self.process.channel, self.deadline, max_bytes)
        except wire.MessageTooLarge as exc:  # refused from its length prefix, never read
            raise EvaluationFailed(self.replies.refusal(exc.limit)) from None
        except TimeoutError:
            raise EvaluationFailed(self._timed_out()) from None
        except (wire.ChannelClosed, ConnectionError, ValueError):
            raise EvaluationFailed(self._ended()) from None
        if reply.get("error") == "reply":  # the SDK would not send more than max_bytes
            raise EvaluationFailed(self.replies.refusal(max_bytes))
        if "error" in reply:
            raise EvaluationFailed(WITHHELD_ERROR if self.withheld else _describe(reply))
        return dict(reply)

    def _timed_out(self) -> str:
        return f"the evaluation exceeded its time limit of {self.timeout_s:g} s"

    def _ended(self) -> str:
        """Why the process stopped talking: it exited, or a limit ended it."""
        code = self.process.wait(EXIT_WAIT_S)
        if code == 0:
            return NOT_PAUSED
        limit = self.process.limit_reason()
        if limit is not None:
            return f"the evaluation was {limit}"
        tail = WITHHELD_TAIL if self.withheld else _tail(self.log_path)
        return f"the script exited with code {code} before serving the request:\n{tail}"


def _describe(reply: dict[str, Any]) -> str:
    kind, detail = reply.get("error"), reply.get("detail", "")
    if kind == "load":
        return f"the bound load function failed on the checkpoint:\n{detail}"
    if kind == "infer":
        return f"the bound infer function raised an exception:\n{detail}"
    return str(detail)


def _tail(log: Path) -> str:
    """The last lines of the evaluation's own output: bounded, and never through a link."""
    lines = read_tail(log, LOG_TAIL_BYTES).decode(errors="replace").strip().splitlines()
    return "\n".join(lines[-LOG_TAIL_LINES:]) or "(no output)"
