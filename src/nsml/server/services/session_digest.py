"""Why a session failed, in one line a person can act on: the exception its log ends with.

The runner records only the exit code; the traceback's last line (``ValueError: ...``)
is what a participant needs to see first, so the web UI shows it next to the reason."""

from __future__ import annotations

import re

LOG_TAIL_BYTES = 64 * 1024  # a traceback's last line is near the end; never read a whole log
MAX_LINE_CHARS = 300

_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit)\b(?::.*)?$")


def exception_line(log_tail: bytes) -> str | None:
    """The last ``SomethingError: message`` line of a log's tail, shortened; None when
    the log ends without one (killed, out of memory, ``sys.exit(1)``)."""
    for line in reversed(log_tail.decode(errors="replace").splitlines()):
        line = line.strip()
        if _EXCEPTION.match(line):
            return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"
    return None
