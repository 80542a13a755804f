"""``nsml admin backup`` and ``nsml admin restore``: the whole platform in one file.

A backup is taken from the live server (it keeps serving). A restore is the operator's
step with the server stopped, into a fresh NSML_HOME: it refuses to run beside a live
server (which would go on with the state it holds in memory and overwrite the restored
one) and never writes over a home that already holds a platform.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from nsml.backups import BackupError, bucket_from_env, restore, verify
from nsml.cli.accounts import admin
from nsml.cli.output import CliError, console, handle_errors, print_json, server
from nsml.client.connection import running_server
from nsml.config import nsml_home


def _summary(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "database": manifest["database"],
        "created_at": manifest["created_at"],
        "files": len(manifest["files"]),
        "counts": manifest["counts"],
    }


@admin.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def admin_backup(path: Path, as_json: bool) -> None:
    """Save the server's database and files to the archive PATH (the server keeps running)."""
    if path.exists():
        raise CliError(f"{path} exists already; choose a new file name for the backup")
    if not path.parent.is_dir():
        raise CliError(f"the folder {path.parent} does not exist; create it or choose another path")
    partial = path.with_name(path.name + ".part")
    try:
        with server().client() as api:
            api.download_backup(partial)
        manifest = verify(partial)  # what arrived is what the server packed
        os.replace(partial, path)
    except BackupError as exc:
        raise CliError(f"the backup that arrived is unusable: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    summary = _summary(path, manifest)
    if as_json:
        print_json(summary)
        return
    console.print(
        f"Backup written to {path} ({summary['size_bytes'] / 1e6:.1f} MB, {summary['files']} files, "
        f"{manifest['database']} database); `nsml admin restore {path}` brings it back."
    )


@admin.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--db", "db_url", default="", help="Empty PostgreSQL database (SQLAlchemy URL) for its backup.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def admin_restore(path: Path, db_url: str, as_json: bool) -> None:
    """Restore the backup PATH into a fresh NSML_HOME, with no server running."""
    home = nsml_home()
    found = running_server(home)
    if found is not None:
        raise CliError(
            f"the server of {home} is running at {found[0]['url']}; stop it first (`nsml server stop`), "
            "then restore"
        )
    try:
        manifest = restore(path, home, db_url, bucket_from_env())
    except BackupError as exc:
        raise CliError(str(exc)) from None
    summary = {**_summary(path, manifest), "home": str(home)}
    if as_json:
        print_json(summary)
        return
    console.print(
        f"Restored {summary['files']} files ({manifest['database']} database, backed up "
        f"{manifest['created_at']}) into {home}; `nsml server start` serves it."
    )
