"""Suspects run alone.

An order with `rescues > 0` was running when a worker died: it may be the handler that killed
its process (poison), or a healthy order that was running beside it. Run next to others, a
poison order would take them down again and again, until they too reach `max_rescues` and are
failed as poison. So a pool holds at most one suspect, starts it only when it holds no other
order, and claims nothing until its handler is over. A healthy order is then killed by a
neighbour at most once (while it is not yet a suspect); afterwards only its own handler, or a
fault outside the pool, can end its process.

The rule needs heartbeats: without them (a fault-testing switch) every order longer than a
lease is rescued under a live worker, so `rescues` points at no dead process, and running those
orders one at a time would hide the double runs the switch exists to show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from skipline.domain.models import Lease
from skipline.worker.runs import Run


@dataclass(eq=False)
class Screened:
    """One claim sorted by the gate: orders to start at once, the suspect to hold (if the
    gate had room for one), and the suspects to give back."""

    healthy: list[Lease] = field(default_factory=list)
    suspect: Lease | None = None
    extra: list[Lease] = field(default_factory=list)


class SuspectGate:
    """The one suspect a pool holds, and how much the pool may claim meanwhile. `enabled`:
    isolate suspects at all (only with heartbeats, see the module docstring)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.held: Run | None = None
        """The suspect the pool holds: waiting for the pool to empty (no task yet), or
        running alone. Nothing is claimed while it is set."""
        self._one_at_a_time = False
        """The last claim brought a suspect: claim one order at a time, so that the suspects
        queued behind it are not claimed only to be released again."""

    def claim_limit(self, free: int) -> int:
        """How many orders to claim into `free` slots."""
        return 1 if self._one_at_a_time else free

    def screen(self, leases: Sequence[Lease]) -> Screened:
        """Sort a claim: the first suspect is to be held unless one already is; any other
        suspect is to be released, to be claimed again later."""
        screened = Screened()
        self._one_at_a_time = False
        for lease in leases:
            if not (lease.order.rescues and self.enabled):
                screened.healthy.append(lease)
                continue
            self._one_at_a_time = True
            if self.held is None and screened.suspect is None:
                screened.suspect = lease
            else:
                screened.extra.append(lease)
        return screened

    def hold(self, run: Run) -> None:
        self.held = run

    def holds(self, run: Run) -> bool:
        return self.held is run

    def waiting(self) -> Run | None:
        """The held suspect, if its handler has not started."""
        run = self.held
        return run if run is not None and run.task is None else None

    def forget(self, run: Run) -> None:
        """`run` is no longer held: its handler ended without taking the process down, its
        lease was lost, or a drain released it. Claims may resume."""
        if self.held is run:
            self.held = None
