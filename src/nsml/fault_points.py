"""Named points where a crash test stops the server mid-operation, to kill it right there.

A test that must SIGKILL the server half-way through a write (a checkpoint renamed into
place but not yet recorded, a dataset installed but not registered) cannot hit that
instant by sleeping. It starts the server with ``NSML_FAULT_PAUSE`` naming one point
(``NAME``, or ``NAME:N`` for its N-th passage) and ``NSML_FAULT_MARKER`` naming a file: on
reaching the point the server writes the file and waits there (for :data:`PAUSE_LIMIT_S`
at most), and the test kills it once the file appears. Unset, a point is one environment
lookup and nothing else.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

PAUSE_VAR = "NSML_FAULT_PAUSE"
MARKER_VAR = "NSML_FAULT_MARKER"
PAUSE_LIMIT_S = 120.0  # a test that forgot to kill the server does not hang it for good
_passages: Counter[str] = Counter()
_lock = threading.Lock()


def pause_point(name: str) -> None:
    """Wait here when the server was started to be killed at ``name``."""
    wanted = os.environ.get(PAUSE_VAR)
    if wanted is None or wanted.split(":")[0] != name:
        return
    with _lock:
        _passages[name] += 1
        passage = _passages[name]
    if passage != int(wanted.partition(":")[2] or 1):
        return
    marker = os.environ.get(MARKER_VAR)
    if marker:
        Path(marker).write_text(f"{os.getpid()} {name}\n")
    time.sleep(PAUSE_LIMIT_S)
