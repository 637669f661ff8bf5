"""Fair-share state on SQLite (domain/fairness.py): start tags for the orders a transaction
inserts, the finish tags of their groups saved in the same transaction, and the virtual
time a claim moves. Each runs on the writer thread, inside the batch's transaction, with one
statement per group or priority, never one per order."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from skipline.domain.fairness import GroupKey, assign_tags, group_of
from skipline.domain.models import NewOrder

Queries = dict[str, str]


def start_tags(
    connection: sqlite3.Connection, queries: Queries, news: Sequence[NewOrder],
) -> list[int]:
    """The start tags of `news`, to be inserted now in this order; their groups' finish tags
    are saved at once (a rollback of the transaction undoes both). The first order's clock
    and group are read with one statement: in the usual batch they are the only ones."""
    first = news[0]
    first_group = group_of(first)
    clock, finish = connection.execute(queries["fair_state"], {
        "priority": first.priority, "tier": first_group[0], "owner": first_group[1],
        "customer": first_group[2]}).fetchone()

    def clock_of(priority: int) -> int:
        if priority == first.priority:
            return int(clock)
        row = connection.execute(queries["fair_clock"], {"priority": priority}).fetchone()
        return 0 if row is None else int(row[0])

    def finish_of(group: GroupKey) -> int:
        if group == first_group:
            return int(finish)
        tier, owner, customer = group
        row = connection.execute(queries["fair_group_finish"], {
            "tier": tier, "owner": owner, "customer": customer}).fetchone()
        return 0 if row is None else int(row[0])

    tags, finishes = assign_tags(news, clock_of, finish_of)
    if len(finishes) == 1:
        connection.execute(queries["save_fair_group"], (*first_group, finishes[first_group]))
    else:
        connection.executemany(queries["save_fair_group"], [
            (*group, group_finish) for group, group_finish in finishes.items()])
    return tags


def advance_clocks(
    connection: sqlite3.Connection, queries: Queries, names: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Claimed rows (columns `names`) move each priority's virtual time up to the largest
    start tag handed out."""
    priority, start_tag = names.index("priority"), names.index("start_tag")
    top: dict[int, int] = {}
    for row in rows:
        if row[start_tag] > top.get(row[priority], -1):
            top[row[priority]] = row[start_tag]
    connection.executemany(queries["advance_fair_clock"], top.items())
