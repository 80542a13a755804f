"""The platform side of ``nsml.paused``: serve a submission's inference requests.

The platform starts the script with ``--pause 1 --mode test --iteration CKPT`` and an
inherited socket (``NSML_EVAL_FD``). ``serve`` loads the checkpoint through the bound
``load``, then answers ``infer`` requests until told to exit. The test labels never
come near this process: it only ever receives inputs.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any

from nsml import wire
from nsml.sdk.checkpoints import load_path

TRACEBACK_LINES = 20


def _plain(value: Any) -> Any:
    """numpy/torch results to JSON: arrays to lists, scalars to numbers, tuples to lists."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _plain(tolist())
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (int, float, str, bool)):
        return item()
    return value


def _excerpt() -> str:
    lines = traceback.format_exc().strip().splitlines()
    return "\n".join(lines[-TRACEBACK_LINES:])


def _reply(channel: socket.socket, predictions: Any, count: int, limit: int | None) -> None:
    """Send the predictions, or say why not when they are larger than the platform reads.

    The platform refuses a reply over ``limit`` unread; saying so here gives the
    participant the reason in their own words instead of a closed channel.
    """
    try:  # plain lists of numbers go straight to JSON; numpy/torch values need _plain
        message = wire.encode({"predictions": predictions})
    except TypeError:
        message = wire.encode({"predictions": _plain(predictions)})
    if limit is not None and len(message) - wire.HEADER_BYTES > limit:
        detail = (
            f"infer returned {len(message)} bytes for a batch of {count} inputs, over the "
            f"{limit} bytes the platform reads; return one small prediction per input"
        )
        wire.send(channel, {"error": "reply", "detail": detail})
        return
    channel.sendall(message)


def serve(load: Callable[..., Any] | None, infer: Callable[..., Any] | None, kwargs: dict[str, Any]) -> None:
    channel = socket.socket(fileno=int(os.environ["NSML_EVAL_FD"]))
    if load is None or infer is None:
        missing = "load" if load is None else "infer"
        wire.send(channel, {"error": "bind", "detail": f"nsml.bind() was not given a {missing} function"})
        sys.exit(1)
    try:
        load(load_path(os.environ["NSML_CHECKPOINT_PATH"]), **kwargs)
    except Exception:
        traceback.print_exc()
        wire.send(channel, {"error": "load", "detail": _excerpt()})
        sys.exit(1)
    sys.stdout.flush()  # what load printed reaches the log before the platform freezes its copy
    sys.stderr.flush()
    wire.send(channel, {"ready": True})
    while True:
        try:
            request = wire.recv(channel)
        except wire.ChannelClosed:
            sys.exit(0)
        if request.get("op") != "infer":
            sys.exit(0)
        try:
            predictions = infer(request["inputs"])
            _reply(channel, predictions, len(request["inputs"]), request.get("max_reply_bytes"))
        except Exception:
            traceback.print_exc()
            wire.send(channel, {"error": "infer", "detail": _excerpt()})
