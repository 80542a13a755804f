"""``nsml shared push|ls|pull|rm``: folders published once and readable by every session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nsml.cli.output import (
    CliError,
    ago,
    console,
    handle_errors,
    human_size,
    print_json,
    progress,
    server,
    table,
)
from nsml.client.publish import PublishFailed, publish_folder
from nsml.client.shared import local_copy, restore
from nsml.names import validate_name


@click.group()
def shared() -> None:
    """Shared resources (e.g. pre-trained embeddings): organisers publish, everyone reads."""


def publish(name: str, folder: Path, description: str, replace: bool) -> dict[str, Any]:
    """Pack FOLDER and publish it as NAME through the platform the `nsml` command uses."""
    try:
        return publish_folder(name, folder, description, replace, status=progress.status)
    except PublishFailed as error:
        raise CliError(str(error)) from None


@shared.command("push")
@click.argument("name")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--description", default="", help="One line shown in `nsml shared ls`.")
@click.option("--replace", is_flag=True, help="Publish a new version of an existing NAME.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def shared_push(name: str, folder: Path, description: str, replace: bool, as_json: bool) -> None:
    """Publish FOLDER as NAME for every session (organisers and admins)."""
    resource = publish(name, folder, description, replace)
    if as_json:
        print_json(resource)
        return
    console.print(
        f"Shared resource {resource['name']} published: {resource['files']} files, "
        f"{human_size(resource['size_bytes'])}. Sessions read it with nsml.shared({name!r})."
    )


@shared.command("ls")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def shared_ls(as_json: bool) -> None:
    """List shared resources."""
    with server().client() as api:
        resources = api.list_shared()
    if as_json:
        print_json(resources)
        return
    rows = [
        (
            r.name,
            human_size(r.size_bytes),
            r.files,
            r.owner,
            ago(r.created_at),
            ago(r.updated_at),
            r.description,
        )
        for r in resources
    ]
    table(
        ("Name", "Size", "Files", "Owner", "Created", "Updated", "Description"), rows, "No shared resources."
    )


@shared.command("pull")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              help="Default: nsml_local/shared/NAME, where nsml.shared looks off the platform.")  # fmt: skip
@handle_errors
def shared_pull(name: str, output: Path | None) -> None:
    """Download NAME's files into a folder."""
    validate_name("shared resource", name)
    target = output or local_copy(Path("nsml_local"), name)
    with server().client() as api, progress.status(f"downloading {name}"):
        version = restore(api, name, target)
    console.print(f"Shared resource {name} (version {version[:12]}) is in {target}.")


@shared.command("rm")
@click.argument("name")
@handle_errors
def shared_rm(name: str) -> None:
    """Remove NAME (its publisher or an admin)."""
    validate_name("shared resource", name)
    with server().client() as api:
        api.delete_shared(name)
    console.print(f"Shared resource {name} removed.")
