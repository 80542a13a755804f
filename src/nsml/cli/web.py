"""``nsml web``: sign the browser in with a one-time link and open the web UI."""

from __future__ import annotations

import webbrowser

import click

from nsml.cli.output import console, handle_errors, server


@click.command()
@click.option("--no-browser", is_flag=True, help="Only print the link.")
@handle_errors
def web(no_browser: bool) -> None:
    """Open the web UI (leaderboards, sessions, logs, charts) signed in as you."""
    with server().client() as api:
        url = api.web_link()
    console.print(f"Sign-in link (one use, valid for 5 minutes): {url}")
    if not no_browser:
        webbrowser.open(url)
