"""Named points where a crash test stops the server mid-operation, to kill it right there.

A test that must SIGKILL the server half-way through a write (a checkpoint renamed into
place but not yet recorded, a dataset installed but not registered) cannot hit that
instant by sleeping. It starts the server with ``NSML_FAULT_CONTROL`` naming a file and,
when it wants the crash, writes a point's name into it (``NAME``, or ``NAME:N`` for its
N-th passage from then on). Reaching that point, the server writes ``FILE.paused`` and
waits there (for :data:`PAUSE_LIMIT_S` at most); the test kills it once that appears.
Without the variable, a point is one environment lookup and nothing else.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CONTROL_VAR = "NSML_FAULT_CONTROL"
PAUSE_LIMIT_S = 120.0  # a test that forgot to kill the server does not hang it for good
_lock = threading.Lock()
_armed: list[str] = [""]  # what the control file said last
_passages: list[int] = [0]  # passages through the point it names since


def pause_point(name: str) -> None:
    """Wait here when the control file names this point (and this passage)."""
    control = os.environ.get(CONTROL_VAR)
    if not control:
        return
    try:
        wanted = Path(control).read_text().strip()
    except OSError:
        return
    with _lock:
        if wanted != _armed[0]:
            _armed[0], _passages[0] = wanted, 0
        if wanted.partition(":")[0] != name:
            return
        _passages[0] += 1
        passage = _passages[0]
    if passage != int(wanted.partition(":")[2] or 1):
        return
    Path(control + ".paused").write_text(f"{os.getpid()} {name}\n")
    time.sleep(PAUSE_LIMIT_S)
