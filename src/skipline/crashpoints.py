"""Fault injection for crash tests: `SKIPLINE_FAULT=<point>` makes the process SIGKILL itself
when it reaches that point. Inert when the variable is unset, which is always in production."""

from __future__ import annotations

import functools
import os
import signal

FAULT_VARIABLE = "SKIPLINE_FAULT"


@functools.cache
def chosen_fault() -> str:
    """The crash point named in the environment, read once per process ('' when unset)."""
    return os.environ.get(FAULT_VARIABLE, "")


def crash_point(name: str) -> None:
    """Die here, abruptly and without cleanup, if the environment asks for this point."""
    if chosen_fault() == name:
        os.kill(os.getpid(), signal.SIGKILL)
