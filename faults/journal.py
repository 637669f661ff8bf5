"""The handler journal: the side effects of the scenario handlers, written as they happen.

Each run of a handler appends a `start` line and, if it returns, an `end` line. Appends go
straight to the kernel (one write() on an O_APPEND descriptor), so a SIGKILLed process loses
none of them. The checker reads the journal to count real handler runs, find runs that
overlapped (two workers on one order at once), and know what a killed process was running.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

JOURNAL_ENV = "FAULTS_JOURNAL"
"""The harness passes the journal's path to the server processes in this variable."""


def append(event: str, order_id: str, path: str | None = None) -> None:
    """Record `event` for `order_id` by this process; a no-op when no journal is configured."""
    target = path or os.environ.get(JOURNAL_ENV)
    if not target:
        return
    line = json.dumps({"event": event, "order": order_id, "pid": os.getpid(), "at": time.time()})
    descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, (line + "\n").encode("utf-8"))
    finally:
        os.close(descriptor)


@dataclass(frozen=True, slots=True)
class Run:
    """One handler run: when it started, in which process, and when it returned (if it did)."""

    order_id: str
    pid: int
    started: float
    ended: float | None


def read_runs(path: Path) -> list[Run]:
    """Pair each start with the next end of the same order in the same process."""
    if not path.exists():
        return []
    runs: list[Run] = []
    open_runs: dict[tuple[str, int], list[float]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        slot = (entry["order"], entry["pid"])
        if entry["event"] == "start":
            open_runs[slot].append(entry["at"])
        elif open_runs[slot]:
            runs.append(Run(entry["order"], entry["pid"], open_runs[slot].pop(0), entry["at"]))
    for (order_id, pid), starts in open_runs.items():
        runs.extend(Run(order_id, pid, started, None) for started in starts)
    return runs


def overlapping_orders(runs: list[Run], deaths: Mapping[int, float]) -> set[str]:
    """Orders that two handler runs worked on at the same time: a lease or fencing failure made
    visible. A run with no end died with its process; it ends at that process's death when the
    harness saw it (`deaths`: pid -> time), else it is left out."""
    by_order: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for run in runs:
        ended = run.ended if run.ended is not None else deaths.get(run.pid)
        if ended is not None:
            by_order[run.order_id].append((run.started, ended))
    found = set()
    for order_id, spans in by_order.items():
        spans.sort()
        for (_, earlier_end), (later_start, _) in pairwise(spans):
            if later_start < earlier_end:
                found.add(order_id)
    return found
