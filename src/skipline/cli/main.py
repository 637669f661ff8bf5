"""The `skipline` command: one group, one module per command group."""

from __future__ import annotations

import click

from skipline import __version__
from skipline.cli.bench import bench
from skipline.cli.client import stats, status, submit
from skipline.cli.errors import SkiplineGroup
from skipline.cli.keys import keys
from skipline.cli.options import examples
from skipline.cli.outcomes import failed, retry
from skipline.cli.serve import serve, worker
from skipline.cli.workers import workers

FIRST_STEPS = examples(
    "skipline serve                                  # http://127.0.0.1:8080, ./skipline.db",
    "skipline submit --payload '{\"item\": \"book\"}' --wait",
    "KEY=$(skipline keys add acme --tier vip)",
    "skipline submit --key \"$KEY\" --user-type vip",
    "skipline stats",
    "",
    "Shell completion (bash; zsh and fish: zsh_source, fish_source):",
    "  eval \"$(_SKIPLINE_COMPLETE=bash_source skipline)\"   # in ~/.bashrc",
)


@click.group(cls=SkiplineGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=FIRST_STEPS)
@click.version_option(__version__, prog_name="skipline")
def cli() -> None:
    """skipline: a durable priority order queue. VIP customers skip the line, nobody starves,
    nothing is lost. Every flag also reads SKIPLINE_<FLAG> from the environment; every
    command has examples at the end of its --help."""


for command in (serve, worker, workers, keys, submit, status, stats, retry, failed, bench):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="skipline")
