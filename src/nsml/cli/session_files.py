"""``nsml memo / command / pull / download / diff``: a session's description, launch
line, shipped source, outputs and checkpoints, and how two sessions differ."""

from __future__ import annotations

import difflib
import shlex
import sys
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from nsml.cli.output import CliError, console, handle_errors, print_json, progress, server, table
from nsml.client.api import ApiClient
from nsml.names import SessionRef, parse_session, validate_checkpoint
from nsml.schemas.sessions import MetricOut, SessionOut

MAX_DIFF_FILE_BYTES = 1 << 20  # larger files are compared by content, not shown line by line


def _ref(text: str, user: str) -> SessionRef:
    return parse_session(text, default_owner=user)


def _default_folder(ref: SessionRef, suffix: str = "") -> Path:
    return Path(f"{ref.owner}_{ref.dataset}_{ref.number}{suffix}")


def _fresh_target(folder: Path) -> Path:
    """A folder to unpack into: new, or existing and empty; never one holding files."""
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{folder} exists and is not a folder; give another DIR")
    if folder.is_dir() and any(folder.iterdir()):
        raise CliError(f"{folder} exists and is not empty; give another DIR or empty it first")
    return folder


def _unpack(archive: Path, target: Path) -> int:
    """Unpack with tarfile's ``data`` filter: no absolute path, no '..', no link outside."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise CliError(f"could not unpack what the server sent into {target}: {exc}") from None
    return sum(1 for m in members if m.isfile())


@click.command()
@click.argument("session")
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Print the session as JSON.")
@handle_errors
def memo(session: str, text: str, as_json: bool) -> None:
    """Set SESSION's memo (its description in `nsml ps`); "" clears it."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    with conn.client() as api:
        updated = api.set_memo(ref, text)
    if as_json:
        print_json(updated)
    else:
        console.print(f"Memo of {updated.name} set.")


def launch_line(session: SessionOut) -> str:
    """The ``nsml run`` line that starts a session like this one from its source folder."""
    parts = ["nsml", "run", "-d", session.dataset, "-e", session.entry]
    if session.args:
        parts += ["-a", shlex.join(session.args)]
    if session.gpus:
        parts += ["-g", str(session.gpus)]
    if session.cpus:
        parts += ["-c", str(session.cpus)]
    if session.memory_mb:
        parts += ["--memory", f"{session.memory_mb}M"]
    if session.shm_mb:
        parts += ["--shm-size", f"{session.shm_mb}M"]
    if session.description:
        parts += ["-m", session.description]
    return shlex.join(parts)


@click.command("command")
@click.argument("session")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def show_command(session: str, as_json: bool) -> None:
    """How SESSION was launched, and the `nsml run` line that runs it again."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    with conn.client() as api:
        found = api.get_session(ref)
    line = launch_line(found)
    if as_json:
        sent = found.model_dump(mode="json")
        keys = ("name", "dataset", "entry", "args", "gpus", "cpus", "memory_mb", "shm_mb", "description")
        print_json({**{k: sent[k] for k in keys}, "parent": sent["parent"], "command": line})
        return
    rows = [
        ("Dataset", found.dataset),
        ("Entry", found.entry),
        ("Args", shlex.join(found.args)),
        ("GPUs", found.gpus),
        ("CPUs", found.cpus or "server default"),
        ("Memory", f"{found.memory_mb} MiB" if found.memory_mb else "server default"),
        ("Shm", f"{found.shm_mb} MiB" if found.shm_mb else "server default"),
    ]
    if found.parent:
        rows.append(("Fork of", found.parent))
    table(("", found.name), rows, "")
    sys.stdout.write(f"\n{line}\n")
    if found.parent:
        sys.stdout.write(f"# or, from the same checkpoint: nsml fork {found.parent.replace(':', ' ')}\n")


@click.command()
@click.argument("session")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@handle_errors
def pull(session: str, folder: Path | None) -> None:
    """Unpack SESSION's source as shipped into FOLDER (default ./OWNER_DATASET_N)."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    target = _fresh_target(folder or _default_folder(ref))
    with tempfile.TemporaryDirectory(prefix="nsml-pull-") as scratch:
        archive = Path(scratch) / "code.tar.gz"
        with conn.client() as api, progress.status(f"downloading the source of {ref}"):
            api.download_source(ref, archive)
        count = _unpack(archive, target)
    console.print(f"Source of {ref} ({count} files, as shipped) is in {target}.")


@click.command()
@click.argument("session")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option("-s", "--src", "source", default="", metavar="PATH",
              help="Only this file or folder of the work dir (relative to it).")  # fmt: skip
@click.option("--checkpoint", default=None, metavar="NAME", help="Download this checkpoint instead.")
@handle_errors
def download(session: str, folder: Path | None, source: str, checkpoint: str | None) -> None:
    """Download what SESSION wrote into FOLDER (default ./OWNER_DATASET_N_output).

    The files of its work dir that the session created or changed (shipped source it
    left as it was is not included), or with --checkpoint NAME that saved checkpoint."""
    conn = server()
    ref = _ref(session, conn.default_owner)
    if checkpoint is not None:
        validate_checkpoint(checkpoint)
        if source:
            raise CliError("--src picks files of the work dir; a checkpoint comes whole")
    suffix = f"_ckpt_{checkpoint}" if checkpoint is not None else "_output"
    target = _fresh_target(folder or _default_folder(ref, suffix))
    with tempfile.TemporaryDirectory(prefix="nsml-download-") as scratch:
        archive = Path(scratch) / "files.tar.gz"
        with conn.client() as api, progress.status(f"downloading from {ref}"):
            if checkpoint is not None:
                api.download_checkpoint_to(ref, checkpoint, archive)
            else:
                api.download_outputs(ref, source, archive)
        count = _unpack(archive, target)
    what = f"Checkpoint {checkpoint} of {ref}" if checkpoint is not None else f"Output of {ref}"
    if count == 0 and checkpoint is None:
        console.print(f"{ref} wrote no files besides its source; {target} is empty.")
        return
    console.print(f"{what} ({count} files) is in {target}.")


# diff ----------------------------------------------------------------------------------
def _source_files(api: ApiClient, ref: SessionRef, scratch: Path) -> dict[str, bytes]:
    archive = scratch / f"{ref.owner}_{ref.dataset}_{ref.number}.tar.gz"
    api.download_source(ref, archive)
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    files[member.name.removeprefix("./")] = handle.read()
    except tarfile.TarError as exc:
        raise CliError(f"the source of {ref} could not be read: {exc}") from None
    return files


def _text(data: bytes) -> list[str] | None:
    if len(data) > MAX_DIFF_FILE_BYTES or b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def source_diff(first: dict[str, bytes], second: dict[str, bytes]) -> tuple[str, dict[str, list[str]]]:
    """A unified diff of two shipped sources, and which files were changed, added, removed."""
    chunks: list[str] = []
    changes: dict[str, list[str]] = {"changed": [], "added": [], "removed": []}
    for name in sorted(set(first) | set(second)):
        old, new = first.get(name), second.get(name)
        if old == new:
            continue
        kind = "added" if old is None else "removed" if new is None else "changed"
        changes[kind].append(name)
        before, after = _text(old or b""), _text(new or b"")
        left = "/dev/null" if old is None else f"a/{name}"
        right = "/dev/null" if new is None else f"b/{name}"
        if before is None or after is None:
            chunks.append(f"Binary or large files {left} and {right} differ\n")
            continue
        for line in difflib.unified_diff(before, after, left, right):
            chunks.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(chunks), changes


def final_metrics(points: list[MetricOut]) -> dict[str, float | None]:
    """Each metric's value at its last step (the last report of that step)."""
    latest: dict[str, tuple[int, datetime, float | None]] = {}
    for point in points:
        stamp = (point.step, point.created_at)
        if point.key not in latest or stamp >= latest[point.key][:2]:
            latest[point.key] = (point.step, point.created_at, point.value)
    return {key: value[2] for key, value in sorted(latest.items())}


ARGUMENT_FIELDS = ("dataset", "entry", "args", "gpus", "cpus", "memory_mb", "shm_mb", "description",
                   "status", "parent")  # fmt: skip


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return shlex.join(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


@click.command()
@click.argument("first")
@click.argument("second")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def diff(first: str, second: str, as_json: bool) -> None:
    """Compare two sessions: arguments, shipped source (unified diff) and final metrics."""
    conn = server()
    refs = (_ref(first, conn.default_owner), _ref(second, conn.default_owner))
    with conn.client() as api, tempfile.TemporaryDirectory(prefix="nsml-diff-") as scratch:
        sessions = [api.get_session(ref) for ref in refs]
        metrics = [final_metrics(api.list_metrics(ref)) for ref in refs]
        sources = [_source_files(api, ref, Path(scratch)) for ref in refs]
    text, changes = source_diff(*sources)
    sent = [session.model_dump(mode="json") for session in sessions]  # status as the server wrote it
    arguments = {f: [sent[0][f], sent[1][f]] for f in ARGUMENT_FIELDS}
    keys = sorted(set(metrics[0]) | set(metrics[1]))
    values = {k: [metrics[0].get(k), metrics[1].get(k)] for k in keys}
    if as_json:
        names = [s.name for s in sessions]
        print_json({"sessions": names, "arguments": arguments, "metrics": values,
                    "source": {**changes, "diff": text}})  # fmt: skip
        return
    header = ("", sessions[0].name, sessions[1].name)
    rows = [(("* " if a != b else "  ") + f, _shown(a), _shown(b)) for f, (a, b) in arguments.items()]
    table(header, rows, "")
    console.print()
    metric_rows = [(k, _shown(a), _shown(b)) for k, (a, b) in values.items()]
    table(("Metric (last step)", *header[1:]), metric_rows, "Neither session reported metrics.")
    console.print()
    if not text:
        console.print("The shipped sources are identical.")
        return
    sys.stdout.write(text)
