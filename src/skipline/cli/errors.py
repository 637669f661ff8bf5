"""How the CLI fails: one clear line on stderr, never a traceback. Exit 2 for invalid
configuration or arguments, exit 1 for everything else that went wrong."""

from __future__ import annotations

from typing import IO, Any

import click

from skipline.domain.errors import (
    ConfigError,
    HandlerNotFound,
    InvalidKeyName,
    InvalidOrder,
    SkiplineError,
)

CONFIG_ERRORS = (ConfigError, HandlerNotFound, InvalidOrder, InvalidKeyName)


class Failure(click.ClickException):
    """The command could not do its job (exit code 1). A `hint`, when given, says on a second
    line what the user can do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"skipline: error: {self.format_message()}", err=True, file=file)
        if self.hint:
            click.echo(f"skipline: hint: {self.hint}", err=True, file=file)


class ConfigProblem(Failure):
    """The configuration is invalid (exit code 2, like a usage error)."""

    exit_code = 2


class SkiplineGroup(click.Group):
    """Turns skipline's own exceptions into one-line messages with the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CONFIG_ERRORS as exc:
            raise ConfigProblem(exc.detail) from None
        except SkiplineError as exc:
            raise Failure(exc.detail) from None
