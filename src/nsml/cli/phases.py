"""Competition phases: `nsml phase add / ls / start`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from nsml.cli.output import CliError, console, handle_errors, print_json, server, table
from nsml.client.archive import pack
from nsml.names import validate_name


@click.group()
def phase() -> None:
    """Rounds of a competition, each with its own test set, limits, dates and board."""


def _when(value: str | None, option: str) -> datetime | None:
    """An ISO time; without a zone it is UTC, as every time the server shows."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} {value!r} is not an ISO time; write e.g. 2026-12-24T09:00 (UTC)") from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _test_files(folder: Path) -> list[tuple[Path, str]]:
    """test_data and test_label from FOLDER, or from its test/ folder (a dataset folder)."""
    for base in (folder, folder / "test"):
        data, labels = base / "test_data", base / "test_label"
        if data.is_file() and labels.is_file():
            return [(data, "test/test_data"), (labels, "test/test_label")]
    raise CliError(f"{folder} holds no test_data and test_label (nor a test/ folder with them)")


@phase.command("add")
@click.argument("dataset")
@click.argument("name")
@click.option("--test", "test_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--starts", default=None, help="ISO time it starts by itself (UTC unless a zone is given).")
@click.option("--ends", default=None, help="ISO time submissions close (UTC unless a zone is given).")
@click.option("--blind", is_flag=True, help="Show no scores until the phase ends.")
@click.option(
    "--daily-limit", type=click.IntRange(min=0), default=None, help="Submissions per user per 24 h."
)
@click.option(
    "--total-limit", type=click.IntRange(min=0), default=None, help="Submissions per user in the phase."
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def phase_add(
    dataset: str,
    name: str,
    test_dir: Path,
    starts: str | None,
    ends: str | None,
    blind: bool,
    daily_limit: int | None,
    total_limit: int | None,
    as_json: bool,
) -> None:
    """Append phase NAME to DATASET, scored on the test set in TEST (test_data, test_label)."""
    validate_name("dataset", dataset)
    validate_name("phase", name)
    starts_at, ends_at = _when(starts, "--starts"), _when(ends, "--ends")
    archive = pack(_test_files(test_dir))
    with server().client() as api:
        added = api.add_phase(
            dataset,
            name,
            archive,
            starts_at,
            ends_at,
            blind=blind,
            daily_limit=daily_limit,
            total_limit=total_limit,
        )
    if as_json:
        print_json(added)
    else:
        console.print(
            f"Phase {added.name} of {dataset} added ({added.test_size} test examples, {added.state})."
        )


@phase.command("ls")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def phase_ls(dataset: str, as_json: bool) -> None:
    """The phases of DATASET, in order, and which one is running."""
    validate_name("dataset", dataset)
    with server().client() as api:
        phases = api.list_phases(dataset)
    if as_json:
        print_json(phases)
        return

    def when(value: datetime | None) -> str:
        return "" if value is None else f"{value:%Y-%m-%d %H:%M}"

    rows = [
        (
            p.index + 1,
            p.name,
            p.state,
            when(p.starts_at),
            when(p.ends_at),
            "yes" if p.blind else "",
            "-" if p.daily_limit is None else p.daily_limit,
            "-" if p.total_limit is None else p.total_limit,
            p.test_size,
        )
        for p in phases
    ]
    table(
        ("#", "Phase", "State", "Starts (UTC)", "Ends (UTC)", "Blind", "Daily", "Total", "Test"),
        rows,
        f"{dataset} has no phases: one test set and board (`nsml phase add` adds some).",
    )


@phase.command("start")
@click.argument("dataset")
@click.argument("name")
@handle_errors
def phase_start(dataset: str, name: str) -> None:
    """Start phase NAME now; each participant's selected submissions are re-scored into it."""
    validate_name("dataset", dataset)
    with server().client() as api:
        started = api.start_phase(dataset, name)
    console.print(
        f"Phase {started.name} of {dataset} is {started.state}; selected submissions are being re-scored."
    )
