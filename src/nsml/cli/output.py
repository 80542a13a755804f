"""Shared CLI plumbing: one-line errors, JSON output, rich tables, human times."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import click
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from nsml.client.api import ApiError
from nsml.client.connection import Connection, ConnectionFailed, connect
from nsml.client.shipping import ShippingError
from nsml.datasets.builders.base import BuildError
from nsml.datasets.layout import LayoutError
from nsml.names import InvalidName
from nsml.sizes import human_size as human_size  # the CLI's modules import it from here

# In a pipe, rich would wrap tables at 80 columns; keep rows on one line for grep and less.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
progress = Console(stderr=True)  # spinners and progress, kept off stdout (and --json)
F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """Printed as ``Error: <message>``, exit code 1."""


def handle_errors(fn: F) -> F:
    """Turn every expected failure into one clear line and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            raise CliError(exc.detail) from None
        except (ConnectionFailed, ShippingError, InvalidName, LayoutError, BuildError) as exc:
            raise CliError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def server() -> Connection:
    return connect(start=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(jsonable(data), ensure_ascii=False, indent=2) + "\n")


def jsonable(data: Any) -> Any:
    """``data`` with every schema model in it dumped as the JSON the server sent: its
    fields in the schema's order, None kept (``--json`` prints what the API answered)."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, (list, tuple)):
        return [jsonable(item) for item in data]
    if isinstance(data, dict):
        return {key: jsonable(value) for key, value in data.items()}
    return data


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> None:
    if not rows:
        console.print(empty)
        return
    grid = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(grid)


def ago(when: datetime | None) -> str:
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (datetime.now(timezone.utc) - when).total_seconds()
    if seconds < 60:
        return f"{max(0, int(seconds))} seconds ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} minutes ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} hours ago"
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def elapsed_since(when: datetime) -> str:
    """How long ago ``when`` was, briefly: ``12s``, ``35m``, ``2h 05m``, ``3d 04h``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = max(0, int((datetime.now(timezone.utc) - when).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600:02d}h"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def summary_text(summary: dict[str, Any] | None) -> str:
    if not summary:
        return ""
    parts = []
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{key}={value}")
    return " ".join(parts)
