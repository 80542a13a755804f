"""Competition commands: submit, board, infer."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nsml.cli.output import CliError, ago, console, handle_errors, print_json, progress, server, table
from nsml.client.api import ApiClient, ApiError
from nsml.names import parse_session, validate_name
from nsml.schemas.competition import MySubmissions, SubmissionOut

LONG_POLL_S = 5.0


@click.command()
@click.argument("session")
@click.argument("checkpoint")
@click.option(
    "-t", "--test", "test_mode", is_flag=True, help="Show predictions for 10 test inputs; post no score."
)
@click.option("-b", "--batch", "batch_size", default=64, show_default=True, help="Inputs per infer call.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def submit(session: str, checkpoint: str, test_mode: bool, batch_size: int, as_json: bool) -> None:
    """Evaluate CHECKPOINT of SESSION on the hidden test set and post the score."""
    conn = server()
    ref = parse_session(session, default_owner=conn.default_owner)
    with conn.client() as api:
        if test_mode:
            with progress.status(f"Running infer of {ref} checkpoint {checkpoint} on 10 test inputs"):
                rows = api.preview_submission(str(ref), checkpoint, batch_size)
            if as_json:
                print_json(rows)
            else:
                _show_predictions([(r.input, [r.probability, r.prediction]) for r in rows])
            return
        submission = api.submit(str(ref), checkpoint, batch_size)
        try:
            submission = _follow(api, submission, quiet=as_json)
        except KeyboardInterrupt:
            submission = _interrupted(api, submission)
    if as_json:
        print_json(submission)
    elif submission.status == "scored":
        console.print(
            f"Submission {submission.id} of {ref} checkpoint {checkpoint}: "
            f"score {submission.public_score:.6g} (public part of the test set)."
        )
    if submission.status != "scored":
        raise CliError(f"submission {submission.id} failed: {submission.reason}")


def _interrupted(api: ApiClient, submission: SubmissionOut) -> SubmissionOut:
    """Ctrl-C while following: cancel the submission (asking first on a terminal), since
    otherwise it would go on running, be scored and count against the limits unseen."""
    number = submission.id
    if sys.stdin.isatty():
        try:
            keep = not click.confirm(
                f"\nCancel submission {number}? (otherwise it keeps running and is scored)",
                default=True,
                err=True,
            )
        except click.Abort:  # a second Ctrl-C: cancel
            keep = False
        if keep:
            console.print(
                f"Submission {number} keeps running; `nsml board {submission.dataset} --private` "
                "shows its result."
            )
            raise SystemExit(0)
    try:
        cancelled = api.cancel_submission(number)
    except ApiError as exc:
        if exc.status != 409:
            raise
        return api.get_submission(number)  # it ended meanwhile: report that
    raise CliError(f"submission {number} {cancelled.reason}")


def _follow(api: ApiClient, submission: SubmissionOut, quiet: bool) -> SubmissionOut:
    """Poll the submission, with a progress bar over the test inputs."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(
        *columns, console=progress, disable=quiet or not progress.is_terminal, transient=True
    ) as bar:
        task = bar.add_task("Inferring", total=submission.total)
        while submission.status in ("queued", "running"):
            submission = api.get_submission(submission.id, wait=LONG_POLL_S)
            reason = submission.reason if submission.status == "queued" else None
            description = f"Queued ({reason.split(':')[0]})" if reason else "Inferring"
            if submission.status == "queued" and submission.waiting_for:
                description = f"Queued #{submission.queue_position} ({submission.waiting_for})"
            bar.update(task, completed=submission.progress, description=description)
    return submission


@click.command()
@click.argument("dataset")
@click.option("--private", "private", is_flag=True, help="All of my own submissions, with limits left.")
@click.option("--phase", default=None, help="The board of this phase (default: the current one).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def board(dataset: str, private: bool, phase: str | None, as_json: bool) -> None:
    """The leaderboard of DATASET: the best submission per user."""
    validate_name("dataset", dataset)
    with server().client() as api:
        data = api.my_submissions(dataset) if private else api.board(dataset, phase)
    if as_json:
        print_json(data)
        return
    if isinstance(data, MySubmissions):
        _show_private(data)
        return
    arrow = "higher is better" if data.higher_is_better else "lower is better"
    state = "closed, ranked by the private test set" if data.closed else "live, public test set"
    if data.phase:
        state += f"; phase {data.phase}"
    if data.blind:
        until = f"{data.blind_until:%Y-%m-%d %H:%M} UTC" if data.blind_until else "the phase ends"
        state += f"; blind until {until}"
    console.print(f"[bold]{data.dataset}[/bold]  {data.metric} ({arrow}); {state}")
    rows = [
        (
            "baseline" if r.baseline or r.rank is None else r.rank,
            r.owner,
            "" if r.score is None else f"{r.score:.6g}",
            r.session or "",
            r.checkpoint or "",
            r.submissions,
            ago(r.submitted_at),
        )
        for r in data.rows
    ]
    table(
        ("Rank", "User", "Score", "Session", "Checkpoint", "Submissions", "Submitted"),
        rows,
        "No scored submissions yet.",
    )


def _show_private(data: MySubmissions) -> None:
    limits = data.limits
    daily = (
        "no daily limit"
        if limits.daily_limit is None
        else f"{max(0, limits.daily_limit - limits.used_today)} of {limits.daily_limit} left today"
    )
    total = (
        "no total limit"
        if limits.total_limit is None
        else f"{max(0, limits.total_limit - limits.used_total)} of {limits.total_limit} left overall"
    )
    console.print(f"[bold]{data.dataset}[/bold]  my submissions: {daily}; {total}")
    if limits.next_allowed:  # as the server wrote it
        console.print(f"next submission allowed at {limits.model_dump(mode='json')['next_allowed']}")

    def score(value: float | None) -> str:
        return "" if value is None else f"{value:.6g}"

    rows = [
        (
            s.id,
            s.session_name,
            s.checkpoint,
            s.status,
            score(s.public_score),
            score(s.private_score) if data.closed else "hidden",
            ago(s.created_at),
            s.reason.splitlines()[0] if s.reason else "",
        )
        for s in data.submissions
    ]
    table(
        ("ID", "Session", "Checkpoint", "Status", "Public", "Private", "Submitted", "Reason"),
        rows,
        "No submissions yet.",
    )


@click.command()
@click.argument("session")
@click.argument("checkpoint")
@click.option(
    "-i",
    "--input",
    "source",
    default="-",
    show_default=True,
    help="File with one input per line, or - for standard input.",
)
@click.option("-b", "--batch", "batch_size", default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def infer(session: str, checkpoint: str, source: str, batch_size: int, as_json: bool) -> None:
    """Run the bound infer of CHECKPOINT on your own inputs and print the predictions."""
    inputs = _read_inputs(source)
    if not inputs:
        raise CliError("no inputs: give one input per line on standard input or with -i FILE")
    conn = server()
    ref = parse_session(session, default_owner=conn.default_owner)
    with conn.client() as api, progress.status(f"Running infer on {len(inputs)} inputs"):
        predictions = api.infer(ref, checkpoint, inputs, batch_size)
    if as_json:
        print_json([{"input": i, "prediction": p} for i, p in zip(inputs, predictions, strict=True)])
        return
    _show_predictions(list(zip(inputs, predictions, strict=True)))


def _read_inputs(source: str) -> list[str]:
    """One input per line of FILE (or standard input), as UTF-8 text."""
    where = "standard input" if source == "-" else source
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CliError(f"{where} is not UTF-8 text (byte {exc.start}); save the inputs as UTF-8") from None
    except OSError as exc:
        raise CliError(f"cannot read {where}: {exc.strerror or exc}") from None


def _show_predictions(pairs: list[tuple[str, object]]) -> None:
    def number(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else "" if value is None else str(value)

    rows = [
        (text.replace("\t", "  |  "), number(p[0]), number(p[1]))
        if isinstance(p, list) and len(p) == 2
        else (text, "", number(p))
        for text, p in pairs
    ]
    table(("Input", "Probability", "Prediction"), rows, "No predictions.")
