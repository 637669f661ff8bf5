"""Per-kind concurrency in one pool: which kinds a claim may ask for, and how many orders at
most, so that no kind ever runs more orders at once than its `concurrency` (no prefetch either:
invariant 2, docs/architecture.md)."""

from __future__ import annotations

from collections import Counter

from skipline.registry import Handlers


class KindCapacity:
    """Counts the running orders of each kind with a concurrency cap."""

    def __init__(self, handlers: Handlers) -> None:
        self._names = handlers.names
        self._caps = {
            kind.name: kind.concurrency for kind in handlers if kind.concurrency is not None}
        self._running: Counter[str] = Counter()

    def running(self, kind: str) -> int:
        return self._running[kind]

    def started(self, kind: str) -> None:
        self._running[kind] += 1

    def finished(self, kind: str) -> None:
        self._running[kind] -= 1

    def claimable(self, free: int) -> tuple[list[str], int]:
        """The kinds a claim of up to `free` orders may ask for, and its limit: a kind at its
        cap is left out, and the limit is the smallest room left among the capped kinds asked
        for, since every order one claim returns may be of that one kind. Uncapped kinds
        alone claim all `free` slots at once."""
        kinds = []
        limit = free
        for name in self._names:
            cap = self._caps.get(name)
            if cap is None:
                kinds.append(name)
                continue
            room = cap - self._running[name]
            if room > 0:
                kinds.append(name)
                limit = min(limit, room)
        return kinds, limit
