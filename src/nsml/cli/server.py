"""``nsml server start|stop|status``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from nsml.cli.output import CliError, console, handle_errors, print_json, server, table
from nsml.client.api import ApiClient, ApiError
from nsml.client.connection import running_server, start_embedded, stop_embedded
from nsml.config import nsml_home
from nsml.schemas.system import LimitsOut


@click.group("server")
def server_group() -> None:
    """The platform server (started automatically in local mode)."""


@server_group.command("start")
@click.option("--host", default=None, help="Listen address (foreground mode).")
@click.option("--port", type=int, default=None, help="Port, 0 for a free one (foreground mode).")
@click.option("--db", default=None, help="SQLAlchemy URL, e.g. postgresql+psycopg://... (foreground mode).")
@click.option("--max-concurrent", type=int, default=0, help="Sessions run at once (default: CPU cores).")
@click.option("--foreground", is_flag=True, help="Run in this terminal for a shared deployment.")
@click.option(
    "--runner",
    type=click.Choice(["local", "ray"]),
    default=None,
    help="Where sessions run (foreground).",
)
@click.option("--ray-address", default=None, help="Ray head address HOST:PORT for --runner ray.")
@click.option("--public-url", default=None, help="URL Ray workers reach this server at.")
@handle_errors
def server_start(
    host: str | None,
    port: int | None,
    db: str | None,
    max_concurrent: int,
    foreground: bool,
    runner: str | None,
    ray_address: str | None,
    public_url: str | None,
) -> None:
    """Start the embedded server in the background, or with --host/--port/--db in the foreground."""
    home = nsml_home()
    if runner == "ray" and not ray_address:
        raise click.ClickException("--runner ray needs --ray-address HOST:PORT (the Ray head node)")
    if foreground or host or port is not None or db or runner or ray_address:
        if running_server(home) and not os.environ.get("NSML_SERVER_ID"):  # several need an id each
            raise click.ClickException(
                f"a server already runs on {home}; `nsml server stop` it first, or give each of "
                "several servers on one home its own NSML_SERVER_ID"
            )
        console.print(f"Serving {home} on {host or '127.0.0.1'}:{port or 0} (Ctrl-C stops)")
        argv = [sys.executable, "-m", "nsml.server", "--home", str(home), "--host", host or "127.0.0.1"]
        argv += ["--port", str(port or 0), "--max-concurrent", str(max_concurrent)]
        for flag, value in (("--db", db), ("--runner", runner), ("--ray-address", ray_address)):
            argv += [flag, value] if value else []
        argv += ["--public-url", public_url] if public_url else []
        sys.stdout.flush()
        os.execv(sys.executable, argv)  # the server in this process, as `python -m nsml.server` runs it
    info, _ = start_embedded(home)
    console.print(f"Server running at {info['url']} (pid {info['pid']}, home {home}).")


@server_group.command("stop")
@click.option("-y", "--yes", "--force", "force", is_flag=True, help="Stop even if sessions are running.")
@handle_errors
def server_stop(force: bool) -> None:
    """Stop the embedded server; running sessions are stopped and marked failed."""
    home = nsml_home()
    running = 0 if force else _running_sessions(home)
    if running:
        what = "1 session is running" if running == 1 else f"{running} sessions are running"
        question = f"{what}; stopping the server ends {'it' if running == 1 else 'them'} (marked failed)"
        if not sys.stdin.isatty():
            raise CliError(f"{question}; pass -y to stop anyway (`nsml ps` lists them)")
        if not click.confirm(f"{question}. Stop the server?", default=False, err=True):
            raise CliError("the server keeps running")
    if stop_embedded(home):
        console.print("Server stopped.")
    else:
        console.print("No server was running.")


def _running_sessions(home: Path) -> int:
    """How many sessions the embedded server of ``home`` runs now (0 when none answers)."""
    found = running_server(home)
    if found is None:
        return 0
    try:
        with ApiClient(found[0]["url"], found[0]["token"]) as api:
            return sum(s.status.value == "running" for s in api.list_sessions())
    except ApiError:
        return 0


@server_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def server_status(as_json: bool) -> None:
    """Whether the embedded server runs, and where."""
    home = nsml_home()
    found = running_server(home)
    limits: LimitsOut | None = None
    if found:
        with server().client() as api:
            limits = api.limits()
    state: dict[str, Any] = {
        "running": found is not None,
        "home": str(home),
        "url": found[0]["url"] if found else None,
        "pid": found[0]["pid"] if found else None,
        "version": found[1].version if found else None,
        "limits": limits,
    }
    if as_json:
        print_json(state)
    elif found and limits:
        console.print(f"Server running at {state['url']} (pid {state['pid']}, home {home}).")
        _print_limits(limits)
    else:
        console.print(f"No server running for {home}.")
        raise SystemExit(3)


def _print_limits(limits: LimitsOut) -> None:
    console.print(f"Sandbox: {limits.sandbox}; limits enforced with {limits.enforcer}.")
    rows = [
        (name, limits.defaults.get(name, ""), limits.enforced_by.get(name, "")) for name in limits.enforced_by
    ]
    table(["Limit", "Default", "Enforced by"], rows, "")
    maxima = ", ".join(f"{flag} {value}" for flag, value in limits.maxima.items())
    console.print(f"Most a session may ask for: {maxima}.")
    if limits.fair_share:
        console.print(_describe_fair_share(limits.fair_share))


def _describe_fair_share(limits: dict[str, int]) -> str:
    """The fair-share settings in one line; 0 means no cap."""

    def cap(value: int | None) -> str:
        return "no cap" if not value else str(value)

    daily = limits.get("default_daily_limit")
    return (
        f"Sessions at once: {limits.get('max_concurrent')}; per user: "
        f"{cap(limits.get('max_sessions_per_user'))}; evaluations per user: "
        f"{cap(limits.get('max_evaluations_per_user'))}; new competitions: "
        + (f"{daily} submissions per day" if daily else "no daily limit")
    )
