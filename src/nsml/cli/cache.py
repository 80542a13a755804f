"""``nsml cache ls|rm``: the stored results of ``nsml.cache``."""

from __future__ import annotations

import sys

import click

from nsml.cli.output import CliError, ago, console, handle_errors, human_size, print_json, server, table


@click.group()
def cache() -> None:
    """Results of nsml.cache, shared by your sessions."""


@cache.command("ls")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def cache_ls(as_json: bool) -> None:
    """List stored results with their sizes."""
    with server().client() as api:
        entries = api.list_cache()
    if as_json:
        print_json(entries)
        return
    rows = [
        (
            e.key[:12],
            e.function,
            e.dataset or "",
            human_size(e.size_bytes),
            e.hits,
            ago(e.created_at),
            ago(e.last_used_at),
        )
        for e in entries
    ]
    table(("Key", "Function", "Dataset", "Size", "Hits", "Created", "Last used"), rows, "The cache is empty.")
    if entries:
        console.print(f"{len(entries)} entries, {human_size(sum(e.size_bytes for e in entries))} in all")


@cache.command("rm")
@click.argument("keys", nargs=-1)
@click.option("--all", "remove_all", is_flag=True, help="Remove every entry.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def cache_rm(keys: tuple[str, ...], remove_all: bool, yes: bool) -> None:
    """Free entries by KEY (a unique prefix is enough), or --all."""
    if not keys and not remove_all:
        raise CliError("give cache KEYs (see `nsml cache ls`) or --all")
    with server().client() as api:
        entries = api.list_cache()
        chosen = entries if remove_all else []
        for prefix in keys:
            found = [e for e in entries if e.key.startswith(prefix)]
            if len(found) != 1:
                raise CliError(f"{prefix!r} matches {len(found)} cache entries; give a longer key")
            chosen.append(found[0])
        if not chosen:
            console.print("The cache is empty.")
            return
        total = sum(e.size_bytes for e in chosen)
        if not yes:
            if not sys.stdin.isatty():
                raise CliError(f"would free {len(chosen)} entries ({human_size(total)}); pass -y to confirm")
            click.confirm(f"Free {len(chosen)} entries ({human_size(total)})?", abort=True)
        for entry in chosen:
            api.delete_cache(entry.key)
    console.print(f"Freed {len(chosen)} entries ({human_size(total)}).")
