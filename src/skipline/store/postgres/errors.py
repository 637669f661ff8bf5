"""Which failures mean "the database cannot be reached right now", turned into StoreUnavailable.

Callers (the API, the workers) only ever see StoreUnavailable for an outage: never a raw asyncpg
or socket exception, so they can answer 503 or back off. Genuine SQL mistakes are not outages
and propagate unchanged so they get noticed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from skipline.domain.errors import StoreUnavailable

OUTAGE_SQLSTATE_CLASSES = ("08", "53", "57")
"""connection exception, insufficient resources (too many connections), operator intervention
(shutdown, crash, "the database system is starting up")."""


def is_outage(error: BaseException) -> bool:
    """True when `error` says the database is down, unreachable, restarting or overloaded."""
    if isinstance(error, (OSError, TimeoutError, asyncio.TimeoutError)):
        return True
    if isinstance(error, (asyncpg.InterfaceError, asyncpg.PostgresConnectionError)):
        return True
    if isinstance(error, asyncpg.PostgresError):
        sqlstate = getattr(error, "sqlstate", None) or ""
        return sqlstate[:2] in OUTAGE_SQLSTATE_CLASSES
    return False


@contextmanager
def outage_as_unavailable() -> Iterator[None]:
    """Re-raise an outage as StoreUnavailable (with the original as its cause)."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as error:
        if is_outage(error):
            detail = f"the PostgreSQL database is unavailable ({type(error).__name__})"
            raise StoreUnavailable(detail) from error
        raise
