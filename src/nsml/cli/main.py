"""The ``nsml`` entry point: the 2018 verbs plus dataset and server management."""

from __future__ import annotations

import click

from nsml import __version__
from nsml.cli.accounts import admin, credit, login, logout, register, whoami
from nsml.cli.cache import cache
from nsml.cli.competition import board, infer, submit
from nsml.cli.datasets import dataset
from nsml.cli.notify import notify
from nsml.cli.plot import plot
from nsml.cli.server import server_group
from nsml.cli.sessions import fork, logs, model, ps, resume, rm, run, stop
from nsml.cli.shared import shared
from nsml.cli.web import web


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nsml")
def cli() -> None:
    """OpenNSML: run, watch and compare machine-learning sessions."""


for command in (
    run, ps, logs, model, stop, rm, fork, resume, plot, submit, board, infer, dataset,
    web, cache, shared, credit, notify, login, logout, register, whoami, admin, server_group,
):  # fmt: skip
    cli.add_command(command)


def main() -> None:
    cli()
