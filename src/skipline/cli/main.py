"""The `skipline` command: one group, one module per command group."""

from __future__ import annotations

import click

from skipline import __version__
from skipline.cli.bench import bench
from skipline.cli.client import stats, status, submit
from skipline.cli.errors import SkiplineGroup
from skipline.cli.keys import keys
from skipline.cli.outcomes import failed, retry
from skipline.cli.serve import serve, worker


@click.group(cls=SkiplineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="skipline")
def cli() -> None:
    """skipline: a durable priority order queue. VIP customers skip the line, nobody starves,
    nothing is lost. Every flag also reads SKIPLINE_<FLAG> from the environment."""


for command in (serve, worker, keys, submit, status, stats, retry, failed, bench):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="skipline")
