"""The ``nsml`` entry point: the 2018 verbs plus dataset and server management."""

from __future__ import annotations

import sys

import click
from click.exceptions import NoArgsIsHelpError

from nsml._version import __version__
from nsml.cli.accounts import admin, credit, login, logout, register, whoami
from nsml.cli.automl import automl
from nsml.cli.backup import admin_backup, admin_restore  # noqa: F401  (registered on `admin`)
from nsml.cli.cache import cache
from nsml.cli.competition import board, infer, submit
from nsml.cli.datasets import dataset
from nsml.cli.live import exec_command
from nsml.cli.notify import notify
from nsml.cli.phases import phase
from nsml.cli.plot import plot
from nsml.cli.server import server_group
from nsml.cli.servers import admin_servers  # noqa: F401  (registered on `admin`)
from nsml.cli.session_files import diff, download, memo, pull, show_command
from nsml.cli.sessions import fork, logs, model, ps, resume, rm, run, stop
from nsml.cli.shared import shared
from nsml.cli.submissions import submission
from nsml.cli.web import web


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nsml")
def cli() -> None:
    """OpenNSML: run, watch and compare machine-learning sessions."""


for command in (
    run, ps, logs, exec_command, model, stop, rm, fork, resume, memo, show_command, pull, download,
    diff, plot, submit, board, infer, submission, phase, dataset, automl,
    web, cache, shared, credit, notify, login, logout, register, whoami, admin, server_group,
):  # fmt: skip
    cli.add_command(command)


def main() -> None:
    """Run the CLI; a usage error is one line on stderr with exit code 1, like every
    other error (click's default is three lines and exit code 2)."""
    try:
        result = cli.main(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `nsml` or `nsml dataset` alone: the help is the answer
        click.echo(exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "nsml"
        message = exc.format_message().rstrip(".")
        click.echo(f"Error: {message[:1].lower()}{message[1:]}; see `{command} --help`", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
