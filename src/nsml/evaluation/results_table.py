"""A competition's results as one CSV table, safe to open in a spreadsheet.

Every text cell comes from somebody: session names, checkpoint names, failure reasons a
participant's script chose. The csv module quotes commas, quotes and newlines, so a cell
never spills into the next; and a cell that starts like a formula (``=``, ``+``, ``-``,
``@``, tab, carriage return) gets a leading ``'``, as OWASP advises against CSV
injection, so Excel or LibreOffice shows it as text instead of running it. Numbers are
written as numbers (a negative score stays a number).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """The cell as written: text that a spreadsheet would read as a formula made inert."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """``columns`` and ``rows`` as CSV text (every text cell quoted, formulas neutralised)."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    writer.writerow([neutralise(c) for c in columns])
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()
