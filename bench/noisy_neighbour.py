"""The noisy-neighbour scenario of bench/simulate_scheduling.py: one customer holds a large
backlog in a tier while light customers keep submitting a little, with the tier `fifo` and
then `customers` (fair share), on the same virtual clock and the same real store kind.

A heavy customer queues `heavy` orders at t = 0 (more than the workers can do for minutes);
`light` other customers each submit one order every `light_every` seconds for `seconds`. The
tier has no `max_wait`, so what is measured is the claim rule alone, not the starvation guard.
Reported: each light order's wait before its start, and the heavy backlog over time.
"""

from __future__ import annotations

import heapq
import random
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from skipline.clock import FakeClock
from skipline.domain.models import NewOrder
from skipline.domain.scheduling import percentile
from skipline.store import open_store
from skipline.store.base import Store

START = 1_700_000_000.0
LEASE_SECONDS = 3600.0
MODES = ("fifo", "customers")


@dataclass(frozen=True)
class NoisyWorkload:
    workers: int = 4
    job_seconds: float = 1.0
    job_spread: float = 0.5
    heavy: int = 2400
    """Orders the heavy customer queues at t = 0 (2400 at 4/s: ten minutes of work)."""
    light: int = 4
    light_every: float = 5.0
    seconds: float = 300.0
    seed: int = 1

    @property
    def longest_job(self) -> float:
        return self.job_seconds * (1.0 + self.job_spread)


@dataclass
class NoisyOutcome:
    """What one mode did: light waits by submission time, and the heavy backlog over time."""

    light_waits: list[tuple[float, float]] = field(default_factory=list)
    heavy_queued: list[tuple[float, int]] = field(default_factory=list)
    heavy_started: int = 0


class NoisyNeighbour:
    """One run: the workload through one store, tier in one fairness mode."""

    def __init__(self, workload: NoisyWorkload, store: Store, clock: FakeClock,
                 mode: str) -> None:
        self.workload = workload
        self.store = store
        self.clock = clock
        self.fifo = mode == "fifo"
        self.running: list[tuple[float, str, str]] = []
        self.submitted_at: dict[str, float] = {}
        self.heavy_waiting = 0
        self.light_waiting = 0
        self.outcome = NoisyOutcome()
        self.durations = random.Random(workload.seed)

    async def run(self) -> NoisyOutcome:
        for _ in range(self.workload.heavy):
            await self.submit("heavy")
        arrivals = self.light_arrivals()
        while True:
            await self.claim_free_slots()
            self.sample()
            next_at = min(arrivals[-1][0] if arrivals else float("inf"),
                          self.running[0][0] if self.running else float("inf"))
            if next_at == float("inf") or (not arrivals and not self.light_waiting):
                break
            self.clock.advance(max(0.0, next_at - self.clock.now()))
            await self.finish_jobs()
            while arrivals and arrivals[-1][0] <= self.clock.now():
                await self.submit(arrivals.pop()[1])
        return self.outcome

    def light_arrivals(self) -> list[tuple[float, str]]:
        """(time, customer), latest first; the light customers are staggered evenly."""
        w = self.workload
        found = []
        for n in range(w.light):
            at = 1.0 + n * w.light_every / w.light
            while at < w.seconds:
                found.append((START + at, f"light-{n + 1}"))
                at += w.light_every
        return sorted(found, reverse=True)

    async def submit(self, owner: str) -> None:
        spread = self.workload.job_spread
        duration = round(self.workload.job_seconds
                         * self.durations.uniform(1 - spread, 1 + spread) * 64) / 64
        new = NewOrder(id=str(uuid.uuid4()), tier="regular", priority=1, owner=owner,
                       duration=duration, fifo=self.fifo)
        order, _ = await self.store.submit(new)
        self.submitted_at[order.id] = order.created_at
        if owner == "heavy":
            self.heavy_waiting += 1
        else:
            self.light_waiting += 1

    async def claim_free_slots(self) -> None:
        free = self.workload.workers - len(self.running)
        if free <= 0:
            return
        now = self.clock.now()
        for lease in await self.store.claim("simulator", free, LEASE_SECONDS):
            order = lease.order
            heapq.heappush(self.running, (now + order.duration, order.id, lease.token))
            if order.owner == "heavy":
                self.heavy_waiting -= 1
                self.outcome.heavy_started += 1
            else:
                self.light_waiting -= 1
                created = self.submitted_at[order.id]
                self.outcome.light_waits.append((created - START, now - created))

    async def finish_jobs(self) -> None:
        while self.running and self.running[0][0] <= self.clock.now():
            _, order_id, token = heapq.heappop(self.running)
            if not await self.store.complete(order_id, token, None):
                raise RuntimeError(f"lost the lease of {order_id}")

    def sample(self) -> None:
        at = self.clock.now() - START
        samples = self.outcome.heavy_queued
        if not samples or at - samples[-1][0] >= 1.0:
            samples.append((at, self.heavy_waiting))


async def run_noisy(workload: NoisyWorkload, store_kind: str) -> dict[str, NoisyOutcome]:
    """Both modes, each on a fresh store of `store_kind`."""
    outcomes = {}
    for mode in MODES:
        folder = Path(tempfile.mkdtemp(prefix="skipline-noisy-"))
        clock = FakeClock(START)
        url = "memory://" if store_kind == "memory" else f"sqlite:///{folder / 'sim.db'}"
        store = open_store(url, clock=clock)
        await store.open()
        try:
            outcomes[mode] = await NoisyNeighbour(workload, store, clock, mode).run()
        finally:
            await store.close()
            shutil.rmtree(folder, ignore_errors=True)
    return outcomes


def report_noisy(workload: NoisyWorkload, outcomes: dict[str, NoisyOutcome]) -> bool:
    """Print light waits per mode; True when fair share kept every light wait within the
    bound (one longest job for the slot to free, plus one turn of the heavy customer)."""
    w = workload
    print(f"noisy neighbour: workers {w.workers}, jobs {w.job_seconds:g}s +/- "
          f"{w.job_spread:.0%}; one customer queues {w.heavy} orders at t=0, {w.light} "
          f"others submit one every {w.light_every:g}s each for {w.seconds:g}s; no max_wait")
    for mode, outcome in outcomes.items():
        waits = [wait for _, wait in outcome.light_waits]
        print(f"{mode:>9}: light wait p50 {percentile(waits, 0.5) or 0:7.1f}s   "
              f"p99 {percentile(waits, 0.99) or 0:7.1f}s   max {max(waits, default=0):7.1f}s"
              f"   ({len(waits)} light orders)")
    bound = 2 * w.longest_job
    fair = max((wait for _, wait in outcomes["customers"].light_waits), default=0.0)
    ok = fair <= bound + 1e-9
    print(f"customers: longest light wait {fair:.2f}s vs bound {bound:g}s "
          f"(two longest jobs): {'OK' if ok else 'EXCEEDED'}")
    return ok


def plot_noisy(workload: NoisyWorkload, outcomes: dict[str, NoisyOutcome], store_kind: str,
               path: Path) -> None:
    """Light customers' start wait against submission time, `fifo` vs `customers`, over the
    heavy customer's backlog."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 2]})
    colours = {"fifo": "tab:red", "customers": "tab:green"}
    for mode, outcome in outcomes.items():
        points = outcome.light_waits
        top.scatter([p[0] for p in points], [p[1] for p in points], s=8, alpha=0.7,
                    color=colours[mode], label=f'fairness = "{mode}"')
        samples = outcome.heavy_queued
        bottom.plot([s[0] for s in samples], [s[1] for s in samples], color=colours[mode],
                    label=f'heavy customer queued ("{mode}")')
    top.set_yscale("symlog", linthresh=2.0)
    longest = max((p[1] for o in outcomes.values() for p in o.light_waits), default=1.0)
    top.set_ylim(-0.2, longest * 3)
    top.set_ylabel("light customers' wait before start (s)\nby submission time")
    top.set_title(f"{store_kind} store: one customer queues {workload.heavy} orders at t=0; "
                  f"{workload.light} light customers,\none order per {workload.light_every:g}s "
                  f"each; {workload.workers} workers, jobs {workload.job_seconds:g}s")
    top.legend(loc="center right", markerscale=2)
    bottom.set_xlim(0, workload.seconds)
    bottom.set_xlabel("simulated time (s)")
    bottom.set_ylabel("heavy customer's queued orders")
    bottom.legend(loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
