"""Parsing and validation of the names users type: sessions, datasets, checkpoints.

The same rules run in the CLI (for a fast, friendly error) and in the server (which
must never trust a name that could reach the file system).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ASCII only, matched in full: ``$`` would let a trailing newline through, and ``\d`` or
# ``int()`` accept other scripts' digits (``١`` is 1 to Python).
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_CHECKPOINT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_NUMBER_RE = re.compile(r"[0-9]{1,10}")
MAX_SESSION_NUMBER = 2**31 - 1  # session numbers are INTEGER columns


class InvalidName(ValueError):
    """A name that cannot be used; the message says what is allowed."""


def validate_name(kind: str, value: str) -> str:
    """Accept user, dataset and owner names: letters, digits, ``_ . -``, at most 64 chars."""
    if not _NAME_RE.fullmatch(value) or ".." in value:
        raise InvalidName(
            f"invalid {kind} name {value!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


def validate_checkpoint(value: str) -> str:
    """Checkpoint names come from ``nsml.save(iteration)``: usually an epoch number."""
    if not _CHECKPOINT_RE.fullmatch(value) or ".." in value:
        raise InvalidName(
            f"invalid checkpoint name {value!r}: use 1-128 letters, digits, '_', '.', ':' or '-'"
        )
    return value


@dataclass(frozen=True)
class SessionRef:
    """``OWNER/DATASET/NUMBER``, the name a session is known by everywhere."""

    owner: str
    dataset: str
    number: int

    def __str__(self) -> str:
        return f"{self.owner}/{self.dataset}/{self.number}"

    @property
    def path(self) -> str:
        """The URL path segment of this session in the HTTP API."""
        return f"{self.owner}/{self.dataset}/{self.number}"


def parse_session(text: str, default_owner: str | None = None) -> SessionRef:
    """Parse ``owner/dataset/N``, or ``dataset/N`` for one's own session."""
    parts = text.strip().strip("/").split("/")
    if len(parts) == 2 and default_owner:
        parts = [default_owner, *parts]
    if len(parts) != 3 or not _NUMBER_RE.fullmatch(parts[2]) or int(parts[2]) > MAX_SESSION_NUMBER:
        raise InvalidName(
            f"invalid session name {text!r}: expected OWNER/DATASET/NUMBER, e.g. alice/demo_kin/1"
        )
    owner, dataset, number = parts
    return SessionRef(validate_name("owner", owner), validate_name("dataset", dataset), int(number))
