"""Queue health (Store.queue_health) built from the rows the SQL stores read, so SQLite and
PostgreSQL turn the same three readings into the same answer:

* per (tier, kind): due orders, the oldest one's age, overdue ones;
* the ages of the longest-waiting due orders of each tier and of each kind;
* the busiest fair-share groups.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from skipline.domain.models import GroupHealth, LineHealth, QueueHealth
from skipline.domain.reporting import LONGEST_WAITING


class Row(Protocol):
    """A row by column name (sqlite3.Row, asyncpg.Record)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Waiting:
    """Ages of the longest-waiting due orders, at most LONGEST_WAITING per tier and per kind."""

    tiers: dict[str, list[float]]
    kinds: dict[str, list[float]]


def ranked_waiting(rows: Iterable[Row]) -> Waiting:
    """Waiting from rows of tier, kind, age, by_tier, by_kind (ranks, 1 the longest waiting)."""
    tiers: dict[str, list[float]] = {}
    kinds: dict[str, list[float]] = {}
    for row in rows:
        if row["by_tier"] <= LONGEST_WAITING:
            tiers.setdefault(row["tier"], []).append(row["age"])
        if row["by_kind"] <= LONGEST_WAITING:
            kinds.setdefault(row["kind"], []).append(row["age"])
    return Waiting(tiers, kinds)


class Lines:
    """Per-line totals (a line: a tier or a kind) added up from (tier, kind) rows."""

    def __init__(self, waiting: dict[str, list[float]]) -> None:
        self.ready: dict[str, int] = {}
        self.oldest: dict[str, float] = {}
        self.overdue: dict[str, int] = {}
        self.waiting = waiting

    def add(self, name: str, row: Row) -> None:
        self.ready[name] = self.ready.get(name, 0) + row["ready"]
        self.overdue[name] = self.overdue.get(name, 0) + row["overdue"]
        self.oldest[name] = max(self.oldest.get(name, 0.0), row["oldest_age"])

    def health(self) -> dict[str, LineHealth]:
        return {
            name: LineHealth(ready, self.oldest[name], self.overdue[name],
                             sorted(self.waiting.get(name, ()), reverse=True))
            for name, ready in self.ready.items()
        }


def queue_health(
    counts: Iterable[Row], waiting: Waiting, groups: Iterable[Row], finished: dict[str, int],
) -> QueueHealth:
    """`counts`: tier, kind, ready, oldest_age, overdue. `groups`: tier, owner, customer,
    ready, running, oldest_age. `finished`: orders per final status within the window."""
    tiers, kinds = Lines(waiting.tiers), Lines(waiting.kinds)
    for row in counts:
        tiers.add(row["tier"], row)
        kinds.add(row["kind"], row)
    return QueueHealth(
        tiers=tiers.health(), kinds=kinds.health(),
        groups=[GroupHealth(row["tier"], row["owner"], row["customer"], row["ready"],
                            row["running"], row["oldest_age"]) for row in groups],
        succeeded=finished.get("succeeded", 0), failed=finished.get("failed", 0),
    )
