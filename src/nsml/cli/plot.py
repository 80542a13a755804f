"""``nsml plot``: metric curves of one or more sessions, as a PNG or in TensorBoard."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from nsml.cli.output import CliError, console, handle_errors, server
from nsml.names import parse_session
from nsml.schemas.sessions import MetricOut


@click.command()
@click.argument("sessions", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG file to write (default: plot-<session>.png).",
)
@click.option("--tensorboard", is_flag=True, help="Start TensorBoard on 127.0.0.1 over the sessions instead.")
@click.option("--port", type=int, default=0, help="TensorBoard port (default: a free one).")
@handle_errors
def plot(sessions: tuple[str, ...], output: Path | None, tensorboard: bool, port: int) -> None:
    """Draw the reported metrics of SESSIONS against their steps, overlaid for comparison."""
    conn = server()
    refs = [parse_session(name, default_owner=conn.default_owner) for name in sessions]
    with conn.client() as api:
        series = {str(ref): api.list_metrics(ref) for ref in refs}
    if tensorboard:
        _tensorboard(series, port)
        return
    from nsml.plotting.figures import draw

    target = output or Path(f"plot-{str(refs[0]).replace('/', '_')}.png")
    try:
        metrics = draw({name: [p.model_dump() for p in points] for name, points in series.items()}, target)
    except ValueError as exc:
        raise CliError(f"nothing to plot for {', '.join(series)}: {exc}") from None
    console.print(f"Wrote {target} ({len(metrics)} metrics: {', '.join(metrics)}).")


def _tensorboard(series: dict[str, list[MetricOut]], port: int) -> None:
    """Write the points as event files (works for remote servers too) and serve them."""
    from nsml.plotting.events import append_scalars

    binary = shutil.which("tensorboard") or str(Path(sys.executable).with_name("tensorboard"))
    logdir = Path(tempfile.mkdtemp(prefix="nsml-tensorboard-"))
    try:
        for name, points in series.items():
            append_scalars(
                logdir / name.replace("/", "_"),
                [(p.key, p.step, p.value, p.created_at.timestamp()) for p in points if p.value is not None],
            )
        command = [binary, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)]
        console.print(f"TensorBoard over {', '.join(series)} (Ctrl-C stops it)")
        child = subprocess.Popen(command)

        def forward(signum: int, _frame: object) -> None:  # stopping us stops TensorBoard too
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        child.wait()
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
