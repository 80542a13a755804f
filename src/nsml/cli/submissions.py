"""Submissions of a competition: `nsml submission ...`."""

from __future__ import annotations

import click

from nsml.cli.output import console, handle_errors, print_json, server, table
from nsml.names import validate_name


@click.group()
def submission() -> None:
    """Submissions to a competition: final selection, re-runs."""


@submission.command("select")
@click.argument("dataset")
@click.argument("ids", nargs=-1, type=click.IntRange(min=1), required=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def submission_select(dataset: str, ids: tuple[int, ...], as_json: bool) -> None:
    """Choose the submissions (IDs) that count for the private ranking; replaces the last choice."""
    validate_name("dataset", dataset)
    with server().client() as api:
        mine = api.select_submissions(dataset, list(ids))
    if as_json:
        print_json(mine)
        return
    console.print(f"Selected on {dataset}: {', '.join(str(i) for i in dict.fromkeys(ids))}.")
    table(
        ("ID", "Session", "Checkpoint", "Status", "Selected"),
        [(s.id, s.session_name, s.checkpoint, s.status, "yes" if s.selected else "") for s in mine],
        "No submissions.",
    )


@submission.command("rerun")
@click.argument("dataset")
@click.argument("ids", nargs=-1, type=click.IntRange(min=1))
@click.option("--all", "everything", is_flag=True, help="Every scored submission of DATASET.")
@handle_errors
def submission_rerun(dataset: str, ids: tuple[int, ...], everything: bool) -> None:
    """Re-score submissions (IDs, or --all) after fixing a test set or metric; free for participants."""
    validate_name("dataset", dataset)
    if everything == bool(ids):
        raise click.ClickException("give submission IDs or --all, not both and not neither")
    with server().client() as api:
        answer = api.rerun_submissions(dataset, list(ids), everything)
    queued = ", ".join(str(i) for i in answer.queued) or "none"
    console.print(
        f"Re-scoring on {dataset}: {queued}; `nsml board {dataset}` shows the new scores when done."
    )
