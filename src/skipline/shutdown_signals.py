"""SIGTERM and SIGINT for a `skipline serve`/`worker` process.

The first either signal starts the graceful shutdown (invariant 5, docs/architecture.md):
stop accepting, drain, release. What a repeat does depends on who sends it:

- SIGTERM again is logged and ignored. Supervisors (systemd, Docker, Kubernetes) send SIGTERM
  and, after their own stop timeout, SIGKILL; an impatient script sending SIGTERM in a loop
  must not cut the drain short.
- SIGINT again (a second Ctrl-C: a person who does not want to wait) is a fast exit: running
  handlers are cancelled and their leases released at once, as far as the store allows within
  a couple of seconds, and the process exits with 130. Orders whose lease could not be
  released run again when it expires. Should the fast exit itself hang (a store that does not
  answer), the process ends after FAST_EXIT_LIMIT seconds regardless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from skipline.logs import fields

logger = logging.getLogger("skipline")

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
FAST_EXIT_CODE = 130
"""128 + SIGINT, what a shell reports for a program ended by Ctrl-C."""
FAST_EXIT_LIMIT = 5.0
"""Seconds a fast exit may take before the process ends without finishing it."""


class ShutdownSignals:
    """The first signal sets `event`; a later SIGINT calls `on_fast_exit` once; other repeats
    are logged and ignored."""

    def __init__(
        self, event: asyncio.Event, on_fast_exit: Callable[[], None] | None = None
    ) -> None:
        self.event = event
        self.received = 0
        self.fast_exit = False
        self._on_fast_exit = on_fast_exit

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for number in SHUTDOWN_SIGNALS:
            loop.add_signal_handler(number, self._on_signal, number)

    def remove(self) -> None:
        """Give the signals back. Once a signal has started the shutdown, later ones are
        ignored until the process exits, so they cannot kill it while it finishes."""
        loop = asyncio.get_running_loop()
        for number in SHUTDOWN_SIGNALS:
            loop.remove_signal_handler(number)
            if self.received:
                signal.signal(number, signal.SIG_IGN)

    def _on_signal(self, number: signal.Signals) -> None:
        self.received += 1
        name = number.name
        if not self.event.is_set():
            hint = "; press Ctrl-C again to exit at once" if number == signal.SIGINT else ""
            logger.info("%s received: draining (no new orders accepted)%s", name, hint,
                        extra=fields("shutdown.draining", signal=name))
            self.event.set()
        elif number == signal.SIGINT and not self.fast_exit:
            self._start_fast_exit(name)
        else:
            logger.info("%s received again; already shutting down, ignored", name,
                        extra=fields("shutdown.signal_ignored", signal=name))

    def _start_fast_exit(self, name: str) -> None:
        self.fast_exit = True
        logger.warning(
            "%s received again: exiting at once; running orders are cancelled and their "
            "leases released (those that cannot be run again when their lease expires)", name,
            extra=fields("shutdown.fast_exit", signal=name),
        )
        asyncio.get_running_loop().call_later(FAST_EXIT_LIMIT, _exit_now)
        if self._on_fast_exit is not None:
            self._on_fast_exit()


def _exit_now() -> None:
    """The fast exit did not finish in time: end the process here."""
    logger.error("the fast exit did not finish within %g s; exiting without it",
                 FAST_EXIT_LIMIT, extra=fields("shutdown.forced"))
    logging.shutdown()
    os._exit(FAST_EXIT_CODE)
