"""One batch of writes in one transaction, run on the writer thread.

The batch first runs all at once: writes of one kind that can share statements (submissions)
go to their `many` function together, the others run one after the other, and no savepoint is
taken. Only if a write raises is that attempt rolled back and the batch run again with one
SAVEPOINT per write, so the failing write is undone alone and the rest still commits. Failures
are rare (a cancel that comes too late, a key name taken), so most batches pay for neither the
savepoints (two statements per write) nor a statement per submission.

If SQLite itself rolls the transaction back (disk full, I/O error) or COMMIT fails, every write of
the batch gets StoreUnavailable and none is acknowledged.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from skipline.domain.errors import SkiplineError, StoreUnavailable

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]
Many = Callable[[sqlite3.Connection, list[Any]], list[Any]]
"""Runs several writes of one kind at once: items in, one result per item out, in order."""


@dataclass(slots=True)
class Write:
    """One write: `work(connection)`, or, when `many` is set, `many(connection, [item, ...])`
    together with every other write of the batch that has the same `many`."""

    work: Work[Any] | None
    many: Many | None
    item: Any


Outcome = tuple[Any, BaseException | None]
"""(value, None) for a write that succeeded, (None, error) for one that failed. A plain tuple:
a batch makes one per write, on the writer thread's critical path."""


def unavailable(exc: sqlite3.Error, doing: str = "write to") -> StoreUnavailable:
    """A sqlite3 error as the domain sees it, with the reason kept for the operator."""
    return StoreUnavailable(f"could not {doing} the SQLite database: {exc}")


def as_domain_error(exc: Exception) -> Exception:
    """Domain errors pass through; sqlite errors become StoreUnavailable; bugs stay bugs."""
    if isinstance(exc, SkiplineError):
        return exc
    if isinstance(exc, sqlite3.Error):
        return unavailable(exc)
    return exc


def run_batch(
    connection: sqlite3.Connection, writes: Sequence[Write]
) -> tuple[list[Outcome], bool]:
    """One transaction holding every write. Returns the outcomes and whether the transaction
    committed; if it did not, every outcome is StoreUnavailable."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        outcomes = _run_together(connection, writes)
        if outcomes is None:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            connection.execute("BEGIN IMMEDIATE")
            outcomes = _run_one_by_one(connection, writes)
        connection.execute("COMMIT")
    except (sqlite3.Error, _BatchLost) as exc:
        _rollback_quietly(connection)
        return [(None, _batch_error(exc)) for _ in writes], False
    return outcomes, True


def _run_together(
    connection: sqlite3.Connection, writes: Sequence[Write]
) -> list[Outcome] | None:
    """Every write without savepoints, grouped writes first; None as soon as one raises."""
    outcomes: list[Outcome] = [_NOT_RUN] * len(writes)
    groups: dict[Many, list[int]] = {}
    for index, write in enumerate(writes):
        if write.many is not None:
            groups.setdefault(write.many, []).append(index)
    try:
        for many, indexes in groups.items():
            values = many(connection, [writes[index].item for index in indexes])
            for index, value in zip(indexes, values, strict=True):
                outcomes[index] = (value, None)
        for index, write in enumerate(writes):
            if write.work is not None:
                outcomes[index] = (write.work(connection), None)
    except Exception:
        return None
    return outcomes


_NOT_RUN: Outcome = (None, RuntimeError("write not run"))


def _run_one_by_one(connection: sqlite3.Connection, writes: Sequence[Write]) -> list[Outcome]:
    outcomes = []
    for write in writes:
        outcomes.append(_run_in_savepoint(connection, write))
        if not connection.in_transaction:
            # SQLite rolled the whole transaction back (disk full, I/O error): the writes
            # before this one are gone too, so nothing of the batch may be acknowledged.
            raise _BatchLost(outcomes[-1][1])
    return outcomes


def _run_in_savepoint(connection: sqlite3.Connection, write: Write) -> Outcome:
    connection.execute("SAVEPOINT work")
    try:
        value = _run_alone(connection, write)
    except Exception as exc:
        if connection.in_transaction:
            connection.execute("ROLLBACK TO work")
            connection.execute("RELEASE work")
        return None, as_domain_error(exc)
    connection.execute("RELEASE work")
    return value, None


def _run_alone(connection: sqlite3.Connection, write: Write) -> Any:
    if write.many is not None:
        return write.many(connection, [write.item])[0]
    assert write.work is not None
    return write.work(connection)


class _BatchLost(Exception):
    def __init__(self, cause: BaseException | None) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _batch_error(exc: Exception) -> StoreUnavailable:
    cause = exc.cause if isinstance(exc, _BatchLost) else exc
    if isinstance(cause, StoreUnavailable):
        return cause
    if isinstance(cause, sqlite3.Error):
        return unavailable(cause)
    return StoreUnavailable(f"the SQLite transaction was rolled back: {cause}")


def _rollback_quietly(connection: sqlite3.Connection) -> None:
    # If even ROLLBACK fails, the next BEGIN reports a connection that is truly broken.
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
