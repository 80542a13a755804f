"""``nsml submission``: one's submissions and where they stand; the organiser's tools."""

from __future__ import annotations

from pathlib import Path

import click

from nsml.cli.output import CliError, ago, console, handle_errors, print_json, server, table
from nsml.names import validate_name
from nsml.schemas.competition import SubmissionOut


@click.group()
def submission() -> None:
    """Your submissions in a competition and your final selection; baselines, re-runs, the
    queue and results for organisers."""


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _state(s: SubmissionOut) -> str:
    """What a submission is doing, with its place in line while it waits."""
    if s.status == "queued" and s.queue_position:
        return f"queued #{s.queue_position}"
    if s.status == "running" and s.total:
        return f"running {s.progress}/{s.total}"
    return s.status


@submission.command("ls")
@click.argument("dataset")
@click.option("--all", "everyone", is_flag=True, help="Everybody's submissions (the dataset's organiser).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def list_submissions(dataset: str, everyone: bool, as_json: bool) -> None:
    """Your submissions in DATASET, newest first: status, scores, place in line and why."""
    validate_name("dataset", dataset)
    with server().client() as api:
        data = api.my_submissions(dataset, everyone=everyone)
    if as_json:
        print_json(data.submissions)
        return
    rows = [
        (
            s.id,
            s.owner,
            s.session_name,
            s.checkpoint,
            _state(s),
            _score(s.public_score),
            _score(s.private_score) if data.closed or everyone else "hidden",
            "baseline" if s.baseline else "",
            ago(s.created_at),
            s.waiting_for or (s.reason.splitlines()[0] if s.reason else ""),
        )
        for s in data.submissions
    ]
    columns = ("ID", "Owner", "Session", "Checkpoint", "Status", "Public", "Private", "", "Submitted", "Why")
    table(columns, rows, f"No submissions on {dataset} yet.")


@submission.command("cancel")
@click.argument("submission_id", metavar="ID", type=click.IntRange(min=0))
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def cancel(submission_id: int, as_json: bool) -> None:
    """Cancel a queued or running submission: yours, or (organisers) anyone's on your dataset."""
    with server().client() as api:
        cancelled = api.cancel_submission(submission_id)
    if as_json:
        print_json(cancelled)
        return
    console.print(f"Submission {cancelled.id} {cancelled.reason}.", markup=False)


@submission.command("baseline")
@click.argument("dataset")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=click.IntRange(min=0))
@click.option("--unset", is_flag=True, help="Make them ordinary submissions again.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def baseline(dataset: str, ids: tuple[int, ...], unset: bool, as_json: bool) -> None:
    """Mark submissions of DATASET as baselines: shown on the board, never ranked (organiser)."""
    validate_name("dataset", dataset)
    with server().client() as api:
        marked = api.set_baselines(dataset, list(ids), not unset)
    if as_json:
        print_json(marked)
        return
    what = "no longer baselines" if unset else "baselines: on the board, unranked"
    console.print(f"Submissions {', '.join(str(s.id) for s in marked)} of {dataset} are {what}.")


@submission.command("queue")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def queue(as_json: bool) -> None:
    """Everything running and waiting on your datasets, and who holds the slots (organiser)."""
    with server().client() as api:
        data = api.queue()
    if as_json:
        print_json(data)
        return
    for slots in data.slots:
        cap = f", at most {slots.per_user} per user" if slots.per_user else ""
        holders = ", ".join(f"{owner} {n}" for owner, n in sorted(slots.holders.items())) or "nobody"
        console.print(f"{slots.kind} slots: {slots.in_use} of {slots.total} in use{cap} ({holders})")
    rows = [
        (
            e.kind,
            e.id,
            e.owner,
            f"{e.name}:{e.checkpoint}" if e.checkpoint else e.name,
            f"queued #{e.queue_position}" if e.queue_position else e.status,
            ago(e.since),
            e.waiting_for or "",
        )
        for e in data.entries
    ]
    table(("Kind", "ID", "Owner", "What", "Status", "Since", "Waits for"), rows, "Nothing queued or running.")


@submission.command("export")
@click.argument("dataset")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE.")
@handle_errors
def export(dataset: str, fmt: str, output: Path | None) -> None:
    """The final private board and every submission of DATASET (organiser)."""
    validate_name("dataset", dataset)
    with server().client() as api:
        if fmt == "csv":
            text = api.export_results_csv(dataset)
        else:
            text = api.export_results(dataset).model_dump_json(indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    console.print(f"Results of {dataset} written to {output}.", markup=False)


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
