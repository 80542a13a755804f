"""Length-prefixed JSON messages over a stream socket.

The platform and a participant's ``nsml.paused`` talk this way over a socket pair
inherited by the (sandboxed) process: no network, no file system path, and nothing
else for the participant's code to find.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

_HEADER = struct.Struct("!I")
MAX_MESSAGE = 512 * 1024 * 1024


class ChannelClosed(EOFError):
    """The other side closed the channel."""


class MessageTooLarge(ValueError):
    """The next message announces more bytes than the reader allows; nothing of it was read."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes is over the {limit} byte limit")
        self.size = size
        self.limit = limit


HEADER_BYTES = _HEADER.size


def encode(message: Any) -> bytes:
    """A message as it travels: length prefix, then JSON."""
    data = json.dumps(message, ensure_ascii=False, allow_nan=True).encode()
    return _HEADER.pack(len(data)) + data


def send(sock: socket.socket, message: Any) -> None:
    sock.sendall(encode(message))


def recv(sock: socket.socket, deadline: float | None = None, max_bytes: int = MAX_MESSAGE) -> Any:
    """The next message; with ``deadline`` (``time.monotonic()``), TimeoutError once it
    passes, however slowly the other side trickles its bytes.

    The length prefix is checked against ``max_bytes`` before a byte of the body is read,
    so a peer cannot make the reader buffer (and parse) more than it is prepared to.
    """
    (size,) = _HEADER.unpack(_read(sock, _HEADER.size, deadline))
    limit = min(max_bytes, MAX_MESSAGE)
    if size > limit:
        raise MessageTooLarge(size, limit)
    return json.loads(_read(sock, size, deadline))


def _read(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the deadline passed while reading a message")
            sock.settimeout(left)
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ChannelClosed("the channel closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
