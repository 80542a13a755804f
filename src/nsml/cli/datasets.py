"""Dataset commands: ls, search, push, build (from a real corpus), builders."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from nsml.cli.dataset_admin import dataset_rm, dataset_show, parse_deadline, read_markdown, summary_line
from nsml.cli.output import console, handle_errors, human_size, print_json, progress, server, table
from nsml.client.api import ApiError
from nsml.client.archive import pack
from nsml.config import nsml_home
from nsml.datasets.builders import BUILDERS, DEFAULT_SEED, BuildContext, get_builder
from nsml.datasets.contents import check_contents
from nsml.datasets.layout import LayoutSummary
from nsml.evaluation.metrics import METRICS
from nsml.names import validate_name
from nsml.schemas.datasets import DatasetOut


@click.group()
def dataset() -> None:
    """Datasets sessions train on."""


def _show(datasets: list[DatasetOut], as_json: bool) -> None:
    if as_json:
        print_json(datasets)
        return
    rows = [
        (
            d.name,
            d.metric,
            d.train_size,
            d.test_size or "-",
            human_size(d.size_bytes),
            d.owner,
            summary_line(d),
        )
        for d in datasets
    ]
    table(("Name", "Metric", "Train", "Test", "Size", "Owner", "Description"), rows, "No datasets found.")


@dataset.command("ls")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def dataset_ls(as_json: bool) -> None:
    """List all datasets."""
    with server().client() as api:
        _show(api.list_datasets(), as_json)


@dataset.command("search")
@click.argument("pattern")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def dataset_search(pattern: str, as_json: bool) -> None:
    """Datasets whose name contains PATTERN (or matches it, with * and ?)."""
    with server().client() as api:
        _show(api.list_datasets(pattern), as_json)


@dataset.command("push")
@click.argument("name")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--metric",
    type=click.Choice(sorted(METRICS)),
    default=None,
    help="How submissions are scored (default: accuracy; a new version keeps its dataset's).",
)
@click.option("--description", default="", help="One line shown in `nsml dataset ls`.")
@click.option("--replace", is_flag=True, help="Push a new version of your dataset NAME.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def dataset_push(
    name: str, folder: Path, metric: str | None, description: str, replace: bool, as_json: bool
) -> None:
    """Register FOLDER (train/train_data, train/train_label, optional test/...) as NAME."""
    validate_name("dataset", name)
    if not folder.is_dir():
        raise click.ClickException(f"{folder} is not a folder")
    if replace and metric is None:  # the labels' check below words its messages by the metric
        with server().client() as api:
            try:
                metric = api.get_dataset(name).metric
            except ApiError:
                pass  # the server says what is wrong once the folder arrives
    summary = check_contents(folder, metric or "accuracy")  # the server checks again
    created = _register(name, folder, metric, description, replace)
    if as_json:
        print_json(created)
    else:
        console.print(
            f"Dataset {created.name} pushed"
            + (f" as version {created.version}" if replace else "")
            + f": {summary.train_size} train, {summary.test_size} test examples, metric {created.metric}."
        )


def _register(
    name: str, folder: Path, metric: str | None, description: str, replace: bool = False
) -> DatasetOut:
    """Upload a checked layout folder through the API, as `push` does for a user's folder."""
    files = [(p, str(p.relative_to(folder))) for p in sorted(folder.rglob("*")) if p.is_file()]
    with server().client() as api:
        return api.create_dataset(name, metric, description, pack(files), replace)


@dataset.command("build")
@click.argument("builder_name", metavar="NAME")
@click.option("--source", default=None, help="Local file/folder or http(s) URL (default: the upstream URL).")
@click.option(
    "--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of the split and sampling."
)
@click.option("--as", "register_as", default=None, help="Register under this name (default: NAME).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def dataset_build(
    builder_name: str, source: str | None, seed: int, register_as: str | None, as_json: bool
) -> None:
    """Build dataset NAME from its real corpus, with its hidden test split, and register it."""
    builder = get_builder(builder_name)
    name = validate_name("dataset", register_as or builder.name)
    origin = source or builder.upstream
    with server().client() as api:  # a build takes seconds to minutes: refuse a taken name first
        if any(d.name == name for d in api.list_datasets(name)):
            raise click.ClickException(f"dataset {name} already exists; pick another name with --as")
    description = builder.description + (f" (seed {seed})" if builder.seeded else "")
    with tempfile.TemporaryDirectory(prefix="nsml-build-") as scratch:
        folder = Path(scratch) / name
        context = BuildContext(origin, folder, nsml_home() / "downloads", seed)
        progress.print(f"Building {builder.name} from {origin}")
        summary: LayoutSummary = builder.run(context)
        with progress.status(f"Registering {name} ({human_size(summary.size_bytes)})"):
            created = _register(name, folder, builder.metric, description)
    if as_json:
        print_json(
            {**created.model_dump(mode="json"), "builder": builder.name, "source": origin, "seed": seed}
        )
    else:
        console.print(
            f"Dataset {created.name} built from {origin}: {summary.train_size} train, "
            f"{summary.test_size} test examples, metric {builder.metric}."
        )


@dataset.command("builders")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def dataset_builders(as_json: bool) -> None:
    """The datasets `nsml dataset build` can make, and the sources each reads."""
    rows = [
        {
            "name": b.name,
            "metric": b.metric,
            "upstream": b.upstream,
            "sources": b.sources,
            "description": b.description,
        }
        for b in BUILDERS.values()
    ]
    if as_json:
        print_json(rows)
        return
    table(
        ("Name", "Metric", "Upstream", "Sources", "Description"),
        [(r["name"], r["metric"], r["upstream"], r["sources"], r["description"]) for r in rows],
        "No builders.",
    )


@dataset.command("close")
@click.argument("name")
@handle_errors
def dataset_close(name: str) -> None:
    """End the competition on NAME: the board then ranks by the private test set."""
    with server().client() as api:
        api.close_dataset(name)
    console.print(f"Competition on {name} closed; `nsml board {name}` shows the private ranking.")


@dataset.command("set")
@click.argument("name")
@click.option(
    "--daily-limit", type=click.IntRange(min=0), default=None, help="Submissions per user per 24 h."
)
@click.option("--total-limit", type=click.IntRange(min=0), default=None, help="Submissions per user in all.")
@click.option("--no-limits", is_flag=True, help="Remove both limits.")
@click.option(
    "--public-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Share of the test set scored on the live board.",
)
@click.option(
    "--eval-timeout", type=click.IntRange(min=1), default=None, help="Seconds an evaluation may take."
)
@click.option(
    "--round-public",
    type=click.IntRange(0, 12),
    default=None,
    help="Decimals of public scores shown to participants (the final ranking uses full precision).",
)
@click.option("--full-precision", is_flag=True, help="Show public scores unrounded again.")
@click.option(
    "--description-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Markdown describing the competition (shown by `dataset show` and the web).",
)
@click.option(
    "--rules-file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Markdown rules."
)
@click.option(
    "--deadline",
    default=None,
    help="ISO 8601 time with its zone (2026-12-31T23:59:00+09:00): no submissions after it, "
    "and the board then ranks by private score.",
)
@click.option("--no-deadline", is_flag=True, help="Remove the deadline.")
@click.option(
    "--max-selected",
    type=click.IntRange(1, 100),
    default=None,
    help="Submissions each participant selects for the private ranking (default 2).",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def dataset_set(
    name: str,
    daily_limit: int | None,
    total_limit: int | None,
    no_limits: bool,
    public_fraction: float | None,
    eval_timeout: int | None,
    round_public: int | None,
    full_precision: bool,
    description_file: Path | None,
    rules_file: Path | None,
    deadline: str | None,
    no_deadline: bool,
    max_selected: int | None,
    as_json: bool,
) -> None:
    """Competition settings of a dataset you own."""
    when = parse_deadline(deadline)
    options = {
        "description": read_markdown(description_file, "description"),
        "rules": read_markdown(rules_file, "rules"),
        "deadline": when.isoformat() if when else None,
        "clear_deadline": no_deadline,
        "daily_limit": daily_limit,
        "total_limit": total_limit,
        "public_fraction": public_fraction,
        "eval_timeout_s": eval_timeout,
        "round_public": round_public,
        "clear_limits": no_limits,
        "full_precision": full_precision,
        "max_selected": max_selected,
    }
    with server().client() as api:
        updated = api.configure_dataset(name, **{k: v for k, v in options.items() if v is not None})
    if as_json:
        print_json(updated)
    else:
        console.print(
            f"{name}: daily limit {updated.daily_limit}, total limit {updated.total_limit}, "
            f"public fraction {updated.public_fraction}, "
            f"evaluation timeout {updated.eval_timeout_s} s, "
            + (
                "public scores in full precision"
                if updated.round_public is None
                else f"public scores rounded to {updated.round_public} decimals"
            )
            + (f", deadline {updated.deadline.isoformat()}" if updated.deadline else "")
        )


dataset.add_command(dataset_rm)
dataset.add_command(dataset_show)
