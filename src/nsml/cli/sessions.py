"""Session commands: run, ps, logs, model, stop, rm."""

from __future__ import annotations

import shlex
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import click

from nsml.cli.output import (
    CliError,
    ago,
    console,
    duration,
    elapsed_since,
    handle_errors,
    print_json,
    progress,
    server,
    summary_text,
    table,
)
from nsml.client.archive import pack
from nsml.client.shipping import collect_source
from nsml.names import SessionRef, parse_session, validate_name
from nsml.schemas.sessions import SessionOut
from nsml.sizes import BadSize, parse_size


def _status(session: SessionOut) -> str:
    status = session.status.value
    if status == "exited":
        return "Exited (0)"
    if status == "failed":
        code = session.exit_code
        return f"Failed ({code})" if code is not None else "Failed"
    if status == "queued" and session.waiting_for:  # where it stands, from the real queue
        return f"Queued #{session.queue_position or '?'} ({session.waiting_for})"
    if status == "queued" and session.reason:
        return f"Queued ({session.reason.split(':')[0]})"
    if status == "running" and session.idle_since:
        return f"Running (idle {elapsed_since(session.idle_since)})"
    return status.capitalize()


@click.command()
@click.option("-d", "--dataset", required=True, help="Dataset to train on (see `nsml dataset ls`).")
@click.option("-e", "--entry", default="main.py", show_default=True, help="Script to run.")
@click.option("-a", "--args", "args", default="", help='Arguments for the script, e.g. "--epochs 3".')
@click.option("-g", "--gpus", default=0, show_default=True, help="GPUs for the session.")
@click.option(
    "-c", "--cpus", default=0, type=click.IntRange(min=0),
    help="CPUs for the session (its OMP_NUM_THREADS; reserved on a Ray node). 0: the server's default.",
)  # fmt: skip
@click.option(
    "--memory", default="", metavar="SIZE",
    help="Memory for the session, e.g. 4G (RAM of all its processes). Default: the server's.",
)  # fmt: skip
@click.option(
    "--shm-size", "shm_size", default="", metavar="SIZE",
    help="Size of /dev/shm, e.g. 1G (DataLoader workers share tensors there). Default: the server's.",
)  # fmt: skip
@click.option("-m", "--message", default="", help="Description shown in `nsml ps`.")
@click.option("--json", "as_json", is_flag=True, help="Print the new session as JSON.")
@handle_errors
def run(
    dataset: str,
    entry: str,
    args: str,
    gpus: int,
    cpus: int,
    memory: str,
    shm_size: str,
    message: str,
    as_json: bool,
) -> None:
    """Ship the current folder and start a training session."""
    validate_name("dataset", dataset)
    for flag, value in (("--memory", memory), ("--shm-size", shm_size)):
        if value:
            try:
                parse_size(value, flag)
            except BadSize as exc:
                raise CliError(str(exc)) from None
    arguments, code = packed_source(entry, args)
    conn = server()
    with conn.client() as api:
        session = api.create_session(
            dataset, entry, arguments, message, gpus, code, cpus=cpus, memory=memory, shm_size=shm_size
        )
    if as_json:
        print_json(session)
    elif session.queue_position:
        console.print(f"Session {session.name} {_queued(session)}.", markup=False)
    else:
        console.print(f"Session {session.name} started.")


def packed_source(entry: str, args: str) -> tuple[list[str], bytes]:
    """The script's arguments and the current folder packed to ship (``run``, ``automl run``),
    both checked before anything reaches the server."""
    root = Path.cwd()
    if not (root / entry).is_file():
        raise CliError(f"entry file {entry!r} not found in {root}; pass -e PATH relative to it")
    try:
        arguments = shlex.split(args)
    except ValueError as exc:
        raise CliError(f"cannot parse -a {args!r}: {exc}") from None
    files = collect_source(root)
    with progress.status(f"Shipping {len(files)} files from {root}", spinner="dots"):
        return arguments, pack(files)


def _queued(session: SessionOut) -> str:
    return f"queued (position {session.queue_position}: {session.reason})"


@click.command()
@click.option("-a", "--all", "show_all", is_flag=True, help="Include ended sessions.")
@click.option("-d", "--dataset", default=None, help="Only sessions of this dataset.")
@click.option("-n", "--number", "limit", type=int, default=None, help="Show at most N sessions.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def ps(show_all: bool, dataset: str | None, limit: int | None, as_json: bool) -> None:
    """List your sessions (running ones, or all with -a)."""
    with server().client() as api:
        sessions = api.list_sessions(all=show_all, dataset=dataset, limit=limit)
    if as_json:
        print_json(sessions)
        return
    rows = [
        (
            s.name,
            ago(s.created_at),
            shlex.join(s.args),
            _status(s),
            summary_text(s.summary),
            " ".join(filter(None, [f"(fork of {s.parent})" if s.parent else "", s.description])),
        )
        for s in sessions
    ]
    hint = "No sessions." if show_all else "No running sessions (`nsml ps -a` shows all)."
    table(("Name", "Created", "Args", "Status", "Summary", "Description"), rows, hint)


def _ref(text: str, user: str) -> SessionRef:
    return parse_session(text, default_owner=user)


@click.command()
@click.argument("session", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the session ends.")
@click.option("-s", "--submission", type=int, default=None, help="The log of a submission's evaluation.")
@handle_errors
def logs(session: str | None, follow: bool, submission: int | None) -> None:
    """Print a session's stdout and stderr (or a submission's, with -s ID)."""
    if session is None and submission is None:
        raise CliError("give a SESSION, or -s ID for the evaluation log of a submission")
    conn = server()
    out = sys.stdout.buffer
    with conn.client() as api:
        if submission is not None:
            chunks = api.read_submission_logs(submission)
        else:
            ref = _ref(session or "", conn.default_owner)
            if follow:
                current = api.get_session(ref)
                if current.queue_position:  # else it would print nothing for as long
                    progress.print(
                        f"{ref} is {_queued(current)}; following once it starts", soft_wrap=True, markup=False
                    )
            chunks = api.follow_logs(ref) if follow else api.read_logs(ref)
        try:
            for chunk in chunks:
                out.write(chunk)
                out.flush()
        except KeyboardInterrupt:
            pass


@click.group()
def model() -> None:
    """Checkpoints of a session."""


@model.command("ls")
@click.argument("session")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def model_ls(session: str, as_json: bool) -> None:
    """List the checkpoints a session saved."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    with conn.client() as api:
        checkpoints = api.list_checkpoints(ref)
    if as_json:
        print_json(checkpoints)
        return
    rows = [(c.name, ago(c.created_at), duration(c.elapsed_s), summary_text(c.summary)) for c in checkpoints]
    table(("Checkpoint", "Last Modified", "Elapsed", "Summary"), rows, f"{ref} has no checkpoints yet.")


@model.command("rm")
@click.argument("session")
@click.argument("checkpoint")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def model_rm(session: str, checkpoint: str, yes: bool) -> None:
    """Remove checkpoints of a session matching CHECKPOINT (wildcards * and ?), freeing storage."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    with conn.client() as api:
        names = [c.name for c in api.list_checkpoints(ref) if fnmatchcase(c.name, checkpoint)]
        if not names:
            pattern = " (no name matches the pattern)" if any(ch in checkpoint for ch in "*?[") else ""
            raise CliError(
                f"checkpoint {checkpoint!r} not found in {ref}{pattern}; "
                f"`nsml model ls {ref}` lists its checkpoints"
            )
        listed = ", ".join(names)
        if not yes:
            if not sys.stdin.isatty():
                raise CliError(
                    f"would remove checkpoints {listed} of {ref}; pass -y to confirm without a terminal"
                )
            click.confirm(f"Remove checkpoints {listed} of {ref}?", abort=True)
        for name in names:
            api.delete_checkpoint(ref, name)
            console.print(f"Checkpoint {name} of {ref} removed.")


@click.command()
@click.argument("session")
@handle_errors
def stop(session: str) -> None:
    """Stop a queued or running session."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    with conn.client() as api:
        result = api.stop_session(ref)
    console.print(f"Session {result.name} {_status(result).lower()}.")


@click.command()
@click.argument("pattern")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def rm(pattern: str, yes: bool) -> None:
    """Remove sessions matching PATTERN (wildcards * and ?), with their logs and checkpoints."""
    conn = server()
    full = (
        pattern
        if pattern.count("/") >= 2 or "*" in pattern.split("/")[0]
        else f"{conn.default_owner}/{pattern}"
    )
    with conn.client() as api:
        matches = [s for s in api.list_sessions(all=True, pattern=full) if fnmatchcase(s.name, full)]
        if not matches:
            raise CliError(f"no session matches {pattern!r}; `nsml ps -a` lists your sessions")
        names = ", ".join(s.name for s in matches)
        if not yes:
            running = [s.name for s in matches if s.status.value in ("queued", "running")]
            warning = f" ({len(running)} still running will be stopped)" if running else ""
            if not sys.stdin.isatty():
                raise CliError(f"would remove {names}{warning}; pass -y to confirm without a terminal")
            click.confirm(f"Remove {names}{warning}?", abort=True)
        for session in matches:
            api.remove_session(parse_session(session.name))
            console.print(f"Session {session.name} removed.")


@click.command()
@click.argument("session")
@click.argument("checkpoint", required=False)
@click.option(
    "-a", "--args", "args", default=None, help="Arguments for the new session (default: the parent's)."
)
@click.option("-m", "--message", default="", help="Description shown in `nsml ps`.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def fork(session: str, checkpoint: str | None, args: str | None, message: str, as_json: bool) -> None:
    """Start a new session from SESSION's source and CHECKPOINT (default: its latest)."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    arguments = None
    if args is not None:
        try:
            arguments = shlex.split(args)
        except ValueError as exc:
            raise CliError(f"cannot parse -a {args!r}: {exc}") from None
    with conn.client() as api:
        created = api.fork_session(ref, checkpoint, arguments, message)
    if as_json:
        print_json(created)
    else:
        console.print(f"Session {created.name} started (fork of {created.parent}).")


@click.command()
@click.argument("session")
@handle_errors
def resume(session: str) -> None:
    """Run an ended SESSION again from its latest checkpoint."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    with conn.client() as api:
        resumed = api.resume_session(ref)
    console.print(f"Session {resumed.name} resumed from its latest checkpoint.")
