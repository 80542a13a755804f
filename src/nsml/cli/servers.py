"""``nsml admin servers``: the API servers sharing the database, and their leases."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from nsml.cli.accounts import admin
from nsml.cli.output import ago, handle_errors, print_json, server, table
from nsml.schemas.servers import ServerOut


def _lease(entry: ServerOut) -> str:
    """How long the lease still runs, or what became of the server."""
    if entry.state == "live":
        left = (entry.lease_expires_at - datetime.now(timezone.utc)).total_seconds()
        return f"{max(0.0, left):.0f} s left"
    if entry.state == "taken over":
        return f"by {entry.taken_over_by}"
    return f"ended {ago(entry.lease_expires_at)}"


@admin.command("servers")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def admin_servers(as_json: bool) -> None:
    """The API servers on this database: state, lease and the sessions each drives (admins)."""
    with server().client() as api:
        servers = api.list_servers()
    if as_json:
        print_json(servers)
        return
    rows = [
        (
            s.id + (" (this)" if s.this else ""),
            s.url,
            s.state,
            _lease(s),
            ago(s.heartbeat_at),
            s.sessions,
        )
        for s in servers
    ]
    table(("Server", "URL", "State", "Lease", "Last heartbeat", "Sessions"), rows, "No servers.")
