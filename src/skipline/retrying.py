"""How background parts live through a store that is briefly down: describe the error in one
line, log it at the right level, and wait a little longer after each consecutive failure."""

from __future__ import annotations

import logging

from skipline.domain.errors import StoreUnavailable
from skipline.domain.scheduling import retry_delay

EXPECTED_STORE_ERRORS: tuple[type[BaseException], ...] = (StoreUnavailable, OSError)
"""Errors that mean "the store cannot be reached right now" rather than a bug."""

FIRST_PAUSE = 0.5
LONGEST_PAUSE = 5.0


def describe_error(exc: BaseException) -> str:
    """'Type: message' with no traceback: what we record on an order and show to people."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def store_pause(failures: int) -> float:
    """Seconds to wait after `failures` consecutive store errors (0.5 s growing to 5 s)."""
    return retry_delay(max(1, failures), FIRST_PAUSE, LONGEST_PAUSE)


def log_store_error(logger: logging.Logger, doing: str, exc: BaseException) -> None:
    """An outage is a warning; anything else is unexpected and gets its traceback."""
    if isinstance(exc, EXPECTED_STORE_ERRORS):
        logger.warning("%s failed, will retry: %s", doing, describe_error(exc))
    else:
        logger.error("%s failed unexpectedly, will retry", doing, exc_info=exc)
