"""``nsml notify``: where the server POSTs when your sessions end, fail or go idle, and
when your submissions are scored or fail."""

from __future__ import annotations

import click

from nsml.cli.output import CliError, console, handle_errors, print_json, server


@click.command()
@click.option("--webhook", metavar="URL", default=None, help="Send notifications to this http(s) URL.")
@click.option("--off", is_flag=True, help="Remove the webhook: no more notifications.")
@click.option("--json", "as_json", is_flag=True, help="Print the setting as JSON.")
@handle_errors
def notify(webhook: str | None, off: bool, as_json: bool) -> None:
    """Show or set your notification webhook (a JSON POST per event)."""
    if webhook is not None and off:
        raise CliError("give either --webhook URL or --off, not both")
    with server().client() as api:
        if off:
            result = api.set_notify(None)
        elif webhook is not None:
            result = api.set_notify(webhook)
        else:
            result = api.notify()
    if as_json:
        print_json(result)
    elif result.webhook:
        console.print(f"Notifications go to {result.webhook}", markup=False, highlight=False)
        console.print(f"events: {', '.join(result.events)}", markup=False, highlight=False)
    else:
        console.print("No webhook set; `nsml notify --webhook URL` sets one.")
