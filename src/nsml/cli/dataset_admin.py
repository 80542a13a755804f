"""What a competition's organiser does to a dataset besides pushing it: ``dataset rm``,
``dataset show``, and the description, rules and deadline ``dataset set`` takes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from rich.markdown import Markdown

from nsml.cli.output import console, handle_errors, print_json, server
from nsml.schemas.datasets import MAX_MARKDOWN, DatasetOut


@click.command("rm")
@click.argument("name")
@click.option("--force", is_flag=True, help="Stop the sessions queued or running on it first.")
@handle_errors
def dataset_rm(name: str, force: bool) -> None:
    """Remove dataset NAME and its files (its organiser or an admin).

    Refused while sessions on it are queued or running, unless --force, which stops them;
    refused while submissions on it are being scored. Sessions that ran on it stay
    listed in `nsml ps` under its name; the name is not given out again.
    """
    with server().client() as api:
        api.remove_dataset(name, force=force)
    console.print(f"Dataset {name} removed.")


@click.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def dataset_show(name: str, as_json: bool) -> None:
    """A dataset's competition: description, rules, deadline, limits and version."""
    with server().client() as api:
        data = api.get_dataset(name)
    if as_json:
        print_json(data)
        return
    state = "closed" if data.closed else "open"
    deadline = data.deadline.isoformat() if data.deadline else "none"
    console.print(f"[bold]{data.name}[/bold] (version {data.version}, by {data.owner}, metric {data.metric})")
    console.print(
        f"{data.train_size} train, {data.test_size} test examples; competition {state}, deadline {deadline}; "
        f"daily limit {data.daily_limit}, total limit {data.total_limit}"
    )
    for title, text in (("Description", data.description), ("Rules", data.rules)):
        if text:
            console.rule(title)
            console.print(Markdown(text))


def read_markdown(path: Path | None, what: str) -> str | None:
    """A Markdown file's text, or a one-line reason it cannot be used."""
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not UTF-8 text; save the {what} as UTF-8") from None
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    if len(text) > MAX_MARKDOWN:
        raise click.ClickException(f"{path} has {len(text)} characters; the {what} may have {MAX_MARKDOWN}")
    return text


def parse_deadline(text: str | None) -> datetime | None:
    """An ISO 8601 time with its zone: a bare time would mean something else to each reader."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.ClickException(
            f"--deadline {text!r:.40} is not an ISO 8601 time, such as 2026-12-31T23:59:00+09:00"
        ) from None
    if value.tzinfo is None:
        raise click.ClickException(
            "--deadline needs a time zone, such as 2026-12-31T23:59:00+09:00 or 2026-12-31T14:59:00Z"
        )
    return value


def summary_line(data: DatasetOut) -> str:
    """The first line of a Markdown description, for one table row."""
    first = next((line.strip() for line in data.description.splitlines() if line.strip()), "")
    return first.lstrip("# ")
