"""Sizes as people type them (``512M``, ``4G``) and read them back (``512 MiB``).

Shared by the command line, which checks a flag before shipping anything, and by the
server and runners, which enforce the size."""

from __future__ import annotations

import re

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?$")
_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB, "t": 1024 * GIB}


class BadSize(ValueError):
    """A size such as ``4G`` could not be read."""


def parse_size(text: str | int, what: str = "size") -> int:
    """Bytes from ``512M``, ``4G``, ``1.5g``, ``100MiB`` or a plain number of bytes.

    Docker's and NSML's flags take sizes this way, so people type them this way."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text.strip())
    if match is None:
        raise BadSize(f"{what} {text!r} is not a size; write it like 512M, 4G or 1.5G")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value > 2**62:
        raise BadSize(f"{what} {text!r} is too large")
    return int(value)


def format_size(size: int) -> str:
    """``512 MiB``, ``4 GiB``, ``1.5 GiB``: how a person reads a limit back."""
    for unit, factor in (("TiB", 1024 * GIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


def human_size(size: float) -> str:
    """``8.2 MiB``: how much a file or folder holds, always one decimal past bytes (listings)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)
