"""What a participant sees of the log of a scored evaluation.

The participant's code may print (or raise, or exit with) anything, and once the hidden
test inputs have reached it, what it prints may carry them: a hostile ``infer`` that
prints its ``raw_data`` would hand every test input to its author. So the evaluation
keeps two logs. ``log.txt`` holds everything the process wrote; the dataset's organiser
and admins read it. ``shown.txt`` is what the participant reads: the output up to the
moment the first test input went out (installing requirements, imports, loading the
checkpoint: what one needs to debug), then the platform's own lines. It is only ever
written by the server, from output that cannot depend on the test inputs, so there is
no window in which a participant could read the rest. ``nsml submit -t`` runs the same
code on the first 10 test inputs, which are public, and shows everything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

WITHHELD = (
    "[nsml] the test inputs went to the script here: what it printed from here on is withheld "
    "from participants, as it could carry them (the organiser can read it); "
    "`nsml submit -t` shows a run on the first 10 test inputs, which are public"
)
WITHHELD_TAIL = "(its output after the test inputs went out is withheld from participants)"
WITHHELD_ERROR = (
    "the bound infer function raised an exception; its message and traceback are withheld from "
    "participants, as they could carry test inputs (the organiser can read them in the log); "
    "`nsml submit -t` runs infer on the first 10 test inputs, which are public, and shows them"
)


class EvaluationLog:
    """The two logs of one submission's evaluation, in its folder."""

    def __init__(self, folder: Path) -> None:
        self.full = folder / "log.txt"
        self.shown = folder / "shown.txt"

    def inputs_going_out(self) -> None:
        """Called just before the first test input is sent: freeze the participant's copy."""
        self._publish(self.full, WITHHELD)

    @property
    def inputs_went_out(self) -> bool:
        return self.shown.exists()

    def finish(self, line: str) -> None:
        """End the participant's copy with the platform's summary ``line``."""
        if not self.shown.exists():  # no test input was sent: nothing in the log can hold one
            self._publish(self.full, None)
        with self.shown.open("a", encoding="utf-8") as shown:
            shown.write(f"[nsml] {line}\n")

    def _publish(self, source: Path, last_line: str | None) -> None:
        partial = self.shown.with_suffix(".tmp")
        partial.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source, partial)
        except FileNotFoundError:
            partial.write_bytes(b"")
        with partial.open("ab") as out:
            if out.tell() and not _ends_with_newline(partial):
                out.write(b"\n")
            if last_line:
                out.write(f"{last_line}\n".encode())
        os.replace(partial, self.shown)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
