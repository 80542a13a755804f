"""Appending scalar points to a TensorBoard event file with TensorBoard's own writer."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.record_writer import RecordWriter

EVENT_FILE = f"events.out.tfevents.0.{socket.gethostname()}.nsml"


def append_scalars(folder: Path, points: Iterable[tuple[str, int, float, float]]) -> None:
    """Append (tag, step, value, wall time) points; the file is created on first use."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / EVENT_FILE
    new = not path.exists()
    with path.open("ab") as handle:
        writer = RecordWriter(handle)
        if new:
            writer.write(Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        for tag, step, value, wall_time in points:
            summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
            writer.write(Event(wall_time=wall_time, step=step, summary=summary).SerializeToString())
        handle.flush()
        os.fsync(handle.fileno())
