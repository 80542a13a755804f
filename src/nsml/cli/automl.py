"""``nsml automl``: hyper-parameter search whose trials are sessions (NSML's CHOPT)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nsml.cli.output import CliError, ago, console, handle_errors, print_json, server, table
from nsml.cli.sessions import packed_source
from nsml.names import validate_name
from nsml.schemas.automl import StudyOut
from nsml.schemas.automl_spec import SpecError, parse_spec

MAX_SPEC_BYTES = 1024 * 1024


@click.group()
def automl() -> None:
    """Search hyper-parameters with Optuna: every trial is a session."""


def read_spec(path: Path) -> dict[str, Any]:
    """The spec file as a mapping, checked here so that a mistake costs no upload."""
    import yaml  # only here: every other command starts without it

    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise CliError(f"{path} is larger than 1 MiB; a spec is a short YAML file")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read the spec {path}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise CliError(f"{path} is not valid YAML{line}; fix the spec and run again") from None
    try:
        parse_spec(raw)
    except SpecError as exc:
        raise CliError(f"invalid spec {path.name}: {exc}") from None
    return dict(raw)


@automl.command("run")
@click.option("-d", "--dataset", required=True, help="Dataset every trial trains on.")
@click.option("-e", "--entry", default="main.py", show_default=True, help="Script to run.")
@click.option("-a", "--args", "args", default="", help="Arguments of every trial, before the searched ones.")
@click.option(
    "--spec", "spec_path", required=True, type=click.Path(path_type=Path), help="The search spec (YAML)."
)
@click.option("-g", "--gpus", default=0, type=click.IntRange(min=0), help="GPUs for each trial.")
@click.option("-c", "--cpus", default=0, type=click.IntRange(min=0), help="CPUs for each trial (0: default).")
@click.option("--memory", default="", metavar="SIZE", help="Memory for each trial, e.g. 4G.")
@click.option("-m", "--message", default="", help="Description of every trial in `nsml ps`.")
@click.option(
    "--resume-pruned", is_flag=True, help="Resume pruned trials from their checkpoints when there is room."
)
@click.option("--json", "as_json", is_flag=True, help="Print the new study as JSON.")
@handle_errors
def run_study(
    dataset: str,
    entry: str,
    args: str,
    spec_path: Path,
    gpus: int,
    cpus: int,
    memory: str,
    message: str,
    resume_pruned: bool,
    as_json: bool,
) -> None:
    """Ship the current folder and start a study; prints its name."""
    validate_name("dataset", dataset)
    spec = read_spec(spec_path)
    arguments, code = packed_source(entry, args)
    with server().client() as api:
        upload = api.upload(code)
        study = api.create_study(
            upload, spec, dataset=dataset, entry=entry, args=arguments, description=message,
            gpus=gpus, cpus=cpus, memory=memory, resume_pruned=resume_pruned,
        )  # fmt: skip
    if as_json:
        print_json(study)
    else:
        click.echo(study.name)


def _best(study: StudyOut) -> str:
    if study.best_value is None:
        return "-"
    return f"{study.best_value:.6g} (trial {study.best_trial})"


@automl.command("ls")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def list_studies(as_json: bool) -> None:
    """List your studies, newest first."""
    with server().client() as api:
        studies = api.list_studies()
    if as_json:
        print_json(studies)
        return
    rows = [
        (
            s.name, s.dataset, s.state, f"{s.metric} ({s.direction[:3]})",
            f"{sum(s.counts.values())}/{s.budget}", s.counts.get("pruned", 0), _best(s), ago(s.created_at),
        )
        for s in studies
    ]  # fmt: skip
    table(
        ("Study", "Dataset", "State", "Metric", "Trials", "Pruned", "Best", "Created"),
        rows,
        "No studies yet; start one with `nsml automl run -d DATASET --spec sweep.yaml`.",
    )


@automl.command("show")
@click.argument("study")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def show_study(study: str, as_json: bool) -> None:
    """A study's trials (number, session, params, value, state) and its best."""
    with server().client() as api:
        detail = api.get_study(study)
    if as_json:
        print_json(detail)
        return
    reason = f" ({detail.reason})" if detail.reason else ""
    console.print(
        f"Study {detail.name} on {detail.dataset}: {detail.state}{reason}; "
        f"{detail.direction} {detail.metric}, "
        f"{detail.sampler} sampler, {detail.pruner} pruner, {detail.parallel} at once",
        markup=False,
    )
    names = [str(p) for p in detail.spec.get("params", {})]
    rows = [
        (
            t.number, t.state, t.session or "-", *(_cell(t.params.get(n)) for n in names),
            "-" if t.value is None else f"{t.value:.6g}", "" if t.step is None else t.step, t.reason or "",
        )
        for t in detail.trials
    ]  # fmt: skip
    table(("#", "State", "Session", *names, "Value", "Step", "Reason"), rows, "No trials yet.")
    if detail.best_trial is not None:
        console.print(
            f"Best: trial {detail.best_trial} ({detail.best_session}) "
            f"{detail.metric}={detail.best_value:.6g} "
            + " ".join(f"--{k} {_cell(v)}" for k, v in (detail.best_params or {}).items()),
            markup=False,
        )


def _cell(value: Any) -> str:
    return format(value, ".4g") if isinstance(value, float) else str(value)


@automl.command("stop")
@click.argument("study")
@handle_errors
def stop_study(study: str) -> None:
    """Stop a study and every trial it still runs; finished trials stay."""
    with server().client() as api:
        detail = api.stop_study(study)
    console.print(f"Study {detail.name} stopped.", markup=False)
