"""How pages write values: one formatter per kind of value, shared by every template,
so a size or a score reads the same on every page and as the CLI prints it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup

from nsml.sizes import human_size

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# Organisers write descriptions and rules; participants read them. Raw HTML is escaped
# (``html: False``) and markdown-it refuses javascript:, vbscript: and data: links.
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def markdown(text: str | None) -> Markup:
    return Markup(_markdown.render(text or ""))  # noqa: S704 - escaped by the parser above


def number(value: Any) -> str:
    """``6815`` for a whole number, six significant digits otherwise (as ``nsml board``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def moment(value: datetime | str | None) -> str:
    """``2026-12-03 14:46`` in UTC; pages' scripts turn ``data-time`` into local time."""
    if value is None or value == "":
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M")


def time_left(value: datetime | str | None) -> str:
    """``3d 4h left``, ``25m left`` or ``ended``: a deadline as a participant counts it."""
    if value is None or value == "":
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = int((when - datetime.now(timezone.utc)).total_seconds())
    if seconds <= 0:
        return "ended"
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    if days:
        return f"{days}d {hours}h left"
    return f"{hours}h {minutes:02d}m left" if hours else f"{minutes}m left"


templates.env.filters["markdown"] = markdown
templates.env.filters["number"] = number
templates.env.filters["size"] = human_size
templates.env.filters["moment"] = moment
templates.env.filters["time_left"] = time_left
