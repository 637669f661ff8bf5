"""Scheduling simulator: VIP overload against a steady regular stream, on a virtual clock.

    .venv/bin/python bench/simulate_scheduling.py [--store sqlite|memory] [--workers 4]
        [--job-seconds 1] [--job-spread 0.5] [--vip-load 1.5] [--regular-load 0.25] [--max-wait 60]
        [--seconds 600] [--seed 1] [--regular-poisson] [--plot docs/img/scheduling.png]
    .venv/bin/python bench/simulate_scheduling.py --scenario noisy-neighbour [--store ...]
        [--workers 4] [--heavy 2400] [--light 4] [--light-every 5] [--seconds 300]
        [--plot docs/img/fairness.png]

The noisy-neighbour scenario (bench/noisy_neighbour.py) runs one customer's large backlog
against light customers inside one tier, with `fairness = "fifo"` and then `"customers"`, and
plots the light customers' start wait for both.

Orders go through a real store (SQLite on a temporary file by default) and the store's own claim
query decides what each free worker slot runs; only time is simulated (a FakeClock the store
reads), so ten minutes of overload take seconds. VIP demand is `--vip-load` times the workers'
capacity (Poisson arrivals), regular demand `--regular-load` times it (a steady, evenly spaced
stream; `--regular-poisson` makes it bursty); arrivals stop after `--seconds` and the queue is
then drained, so every order's wait is known.

It prints VIP p50/p99 wait, the longest regular wait against `max_wait` (the bound is
max_wait + one job: an overdue order waits at most for the next free slot), and inversions: claims
that took an order while a strictly better ready one was waiting (must be 0). It exits 1 if either
check fails. The plot (matplotlib, a bench-only dependency) shows wait by tier over time.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import random
import shutil
import sys
import tempfile
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from noisy_neighbour import NoisyWorkload, plot_noisy, report_noisy, run_noisy

from skipline.clock import FakeClock
from skipline.config import parse_tiers
from skipline.domain.models import NewOrder, Order, Tier
from skipline.domain.scheduling import claim_key, percentile
from skipline.store import open_store
from skipline.store.base import Store

START = 1_700_000_000.0
LEASE_SECONDS = 3600.0
"""Longer than any job: the simulation has no crashes, so no lease may expire."""


@dataclass(frozen=True)
class Workload:
    workers: int = 4
    job_seconds: float = 1.0
    vip_load: float = 1.5
    """VIP demand as a multiple of capacity (workers / job_seconds)."""
    regular_load: float = 0.25
    max_wait: float = 60.0
    seconds: float = 600.0
    seed: int = 1
    regular_poisson: bool = False
    """Regular arrivals as a Poisson stream (bursts) instead of evenly spaced."""
    job_spread: float = 0.5
    """Each job lasts job_seconds * uniform(1 - spread, 1 + spread)."""

    @property
    def longest_job(self) -> float:
        return self.job_seconds * (1.0 + self.job_spread)

    @property
    def capacity(self) -> float:
        """Orders per second the worker slots can finish."""
        return self.workers / self.job_seconds

    def tiers(self) -> dict[str, Tier]:
        return parse_tiers({"tiers": {
            "vip": {"priority": 0},
            "regular": {"priority": 1, "max_wait": self.max_wait},
        }}, "simulator")


@dataclass(frozen=True)
class Arrival:
    at: float
    """Seconds since the epoch, on the FakeClock's time line."""
    tier: str


@dataclass
class SimulationResult:
    """What happened to every order, and what the checks found."""

    waits: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Per tier, (submitted at, waited seconds) of every order, in start order."""
    depth: list[tuple[float, int, int]] = field(default_factory=list)
    """(time, VIP queued, regular queued), sampled once a simulated second."""
    claims: int = 0
    inversions: int = 0
    first_inversion: str = ""


def arrivals(workload: Workload) -> list[Arrival]:
    """VIP orders arrive as a Poisson stream (bursty), regular ones evenly spaced (a steady
    stream) unless `regular_poisson`; both until `workload.seconds`, in time order. Times are
    absolute (START + offset) so that advancing the clock to one lands on it exactly."""
    rng = random.Random(workload.seed)
    vip = poisson_times(rng, workload.vip_load * workload.capacity, workload.seconds)
    regular_rate = workload.regular_load * workload.capacity
    if workload.regular_poisson:
        regular = poisson_times(rng, regular_rate, workload.seconds)
    else:
        regular = steady_times(rng, regular_rate, workload.seconds)
    found = [Arrival(START + at, "vip") for at in vip]
    found += [Arrival(START + at, "regular") for at in regular]
    return sorted(found, key=lambda a: a.at)


def poisson_times(rng: random.Random, rate: float, until: float) -> list[float]:
    times, at = [], 0.0
    while rate > 0:
        at += rng.expovariate(rate)
        if at >= until:
            break
        times.append(at)
    return times


def steady_times(rng: random.Random, rate: float, until: float) -> list[float]:
    if rate <= 0:
        return []
    gap = 1.0 / rate
    first = rng.uniform(0.0, gap)
    return [first + n * gap for n in range(int((until - first) / gap) + 1)]


class Waiting:
    """The simulator's own view of the queue: per tier, waiting orders in acceptance order.

    Within one tier every order has the same priority and max_wait, so the oldest waiting order
    is the tier's best; the best waiting order overall is the best of the tiers' oldest."""

    def __init__(self, tiers: dict[str, Tier]) -> None:
        self.by_tier: dict[str, OrderedDict[str, Order]] = {name: OrderedDict() for name in tiers}

    def add(self, order: Order) -> None:
        self.by_tier[order.tier][order.id] = order

    def take(self, order_id: str, tier: str) -> Order:
        return self.by_tier[tier].pop(order_id)

    def best(self, now: float) -> Order | None:
        heads = [next(iter(queue.values())) for queue in self.by_tier.values() if queue]
        return min(heads, key=lambda o: claim_key(o, now), default=None)

    def count(self, tier: str) -> int:
        return len(self.by_tier[tier])

    def __len__(self) -> int:
        return sum(len(queue) for queue in self.by_tier.values())


class Simulation:
    """Drives one store through a workload, one event time after another."""

    def __init__(self, workload: Workload, store: Store, clock: FakeClock) -> None:
        self.workload = workload
        self.tiers = workload.tiers()
        self.store = store
        self.clock = clock
        self.waiting = Waiting(self.tiers)
        self.running: list[tuple[float, str, str]] = []  # heap of (finishes at, id, token)
        self.outcome = SimulationResult(waits={name: [] for name in self.tiers})
        self.durations = random.Random(workload.seed + 1)

    @property
    def now(self) -> float:
        """Absolute virtual time. Kept absolute throughout: `b - a` of two nearby floats is
        exact, so `advance(b - now)` lands on `b` exactly and no event is missed by a rounding."""
        return self.clock.now()

    def move_to(self, at: float) -> None:
        self.clock.advance(max(0.0, at - self.now))

    async def run(self) -> SimulationResult:
        pending = arrivals(self.workload)
        pending.reverse()  # pop() from the end gives the next arrival
        while True:
            await self.claim_free_slots()
            self.sample_depth()
            next_at = min(
                pending[-1].at if pending else float("inf"),
                self.running[0][0] if self.running else float("inf"),
            )
            if next_at == float("inf"):
                break
            self.move_to(next_at)
            await self.finish_jobs()
            while pending and pending[-1].at <= self.now:
                await self.submit(pending.pop().tier)
        if self.waiting:
            raise RuntimeError(f"{len(self.waiting)} orders were never claimed")
        return self.outcome

    async def submit(self, tier_name: str) -> None:
        tier = self.tiers[tier_name]
        new = NewOrder(
            id=str(uuid.uuid4()), tier=tier.name, priority=tier.priority,
            duration=self.job_duration(), max_wait=tier.max_wait,
        )
        order, _ = await self.store.submit(new)
        self.waiting.add(order)

    def job_duration(self) -> float:
        """A multiple of 1/64 s, so that finishing times stay exact on the clock."""
        spread = self.workload.job_spread
        factor = self.durations.uniform(1.0 - spread, 1.0 + spread)
        return round(self.workload.job_seconds * factor * 64) / 64

    async def finish_jobs(self) -> None:
        while self.running and self.running[0][0] <= self.now:
            _, order_id, token = heapq.heappop(self.running)
            if not await self.store.complete(order_id, token, None):
                raise RuntimeError(f"lost the lease of {order_id}")

    async def claim_free_slots(self) -> None:
        free = self.workload.workers - len(self.running)
        if free <= 0 or not self.waiting:
            return
        now = self.now
        leases = await self.store.claim("simulator", free, LEASE_SECONDS)
        claimed = [self.waiting.take(lease.order.id, lease.order.tier) for lease in leases]
        self.check_inversions(claimed, now)
        for lease, order in zip(leases, claimed, strict=True):
            finishes = self.now + lease.order.duration
            heapq.heappush(self.running, (finishes, order.id, lease.token))
            waited = now - order.created_at
            self.outcome.waits[order.tier].append((order.created_at - START, waited))

    def check_inversions(self, claimed: list[Order], now: float) -> None:
        """Count claimed orders that a still-waiting order should have beaten."""
        self.outcome.claims += len(claimed)
        best = self.waiting.best(now)
        if best is None:
            return
        for order in claimed:
            if claim_key(best, now) < claim_key(order, now):
                self.outcome.inversions += 1
                self.outcome.first_inversion = self.outcome.first_inversion or (
                    f"t=+{now - START:.1f}s claimed {order.tier} seq {order.seq} while "
                    f"{best.tier} seq {best.seq} was waiting"
                )

    def sample_depth(self) -> None:
        depth, at = self.outcome.depth, self.now - START
        if not depth or at - depth[-1][0] >= 1.0:
            depth.append((at, self.waiting.count("vip"), self.waiting.count("regular")))


async def simulate(workload: Workload, store_kind: str) -> SimulationResult:
    folder = Path(tempfile.mkdtemp(prefix="skipline-sim-"))
    clock = FakeClock(START)
    url = "memory://" if store_kind == "memory" else f"sqlite:///{folder / 'sim.db'}"
    store = open_store(url, clock=clock)
    await store.open()
    try:
        return await Simulation(workload, store, clock).run()
    finally:
        await store.close()
        shutil.rmtree(folder, ignore_errors=True)


def waits_of(outcome: SimulationResult, tier: str) -> list[float]:
    return [wait for _, wait in outcome.waits[tier]]


def report(workload: Workload, outcome: SimulationResult) -> bool:
    """Print the figures; True when both checks pass."""
    vip, regular = waits_of(outcome, "vip"), waits_of(outcome, "regular")
    bound = workload.max_wait + workload.longest_job
    longest = max(regular, default=0.0)
    print(f"workers {workload.workers}, jobs {workload.job_seconds:g}s "
          f"+/- {workload.job_spread:.0%} "
          f"(capacity {workload.capacity:g}/s); VIP load {workload.vip_load:g}x, "
          f"regular load {workload.regular_load:g}x, for {workload.seconds:g}s, then drained")
    print(f"orders: {len(vip)} VIP, {len(regular)} regular; {outcome.claims} claimed")
    print(f"VIP wait      p50 {percentile(vip, 0.5) or 0:8.1f}s   "
          f"p99 {percentile(vip, 0.99) or 0:8.1f}s   max {max(vip, default=0):8.1f}s")
    print(f"regular wait  p50 {percentile(regular, 0.5) or 0:8.1f}s   "
          f"p99 {percentile(regular, 0.99) or 0:8.1f}s   max {longest:8.1f}s")
    within = longest <= bound + 1e-9
    print(f"regular max wait {longest:.2f}s vs max_wait {workload.max_wait:g}s "
          f"(bound max_wait + longest job = {bound:g}s): {'OK' if within else 'EXCEEDED'}")
    print(f"inversions: {outcome.inversions}"
          + (f" (first: {outcome.first_inversion})" if outcome.inversions else ""))
    return within and outcome.inversions == 0


def plot(workload: Workload, outcome: SimulationResult, store_kind: str, path: Path) -> None:
    """Wait by tier against submission time, over the queue depth by tier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 2]})
    colours = {"vip": "tab:orange", "regular": "tab:blue"}
    for tier, points in outcome.waits.items():
        top.scatter([p[0] for p in points], [p[1] for p in points], s=3, alpha=0.5,
                    color=colours[tier], label=f"{tier} ({len(points)} orders)")
    top.axhline(workload.max_wait, color="tab:blue", linestyle="--", linewidth=1,
                label=f"regular max_wait ({workload.max_wait:g}s)")
    top.set_ylabel("wait before start (s)\nby submission time")
    top.set_title(f"{store_kind} store: VIP demand {workload.vip_load:g}x capacity, regular "
                  f"{workload.regular_load:g}x, {workload.workers} workers")
    top.legend(loc="upper left", markerscale=4)
    times = [d[0] for d in outcome.depth]
    bottom.plot(times, [d[1] for d in outcome.depth], color=colours["vip"], label="vip queued")
    bottom.plot(times, [d[2] for d in outcome.depth], color=colours["regular"],
                label="regular queued")
    for axis in (top, bottom):
        axis.axvspan(0, workload.seconds, color="grey", alpha=0.08)
    bottom.set_xlabel("simulated time (s); shaded: arrivals, after it: drain")
    bottom.set_ylabel("queued orders")
    bottom.legend(loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parse_args(argv: list[str] | None = None) -> tuple[Workload, str, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Workload()
    parser.add_argument("--scenario", choices=["overload"], default="overload")
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--job-seconds", type=float, default=defaults.job_seconds)
    parser.add_argument("--job-spread", type=float, default=defaults.job_spread)
    parser.add_argument("--vip-load", type=float, default=defaults.vip_load)
    parser.add_argument("--regular-load", type=float, default=defaults.regular_load)
    parser.add_argument("--max-wait", type=float, default=defaults.max_wait)
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--regular-poisson", action="store_true",
                        help="bursty regular arrivals instead of a steady stream")
    parser.add_argument("--plot", type=Path, default=Path("docs/img/scheduling.png"),
                        help="where to write the PNG; 'none' to skip")
    args = parser.parse_args(argv)
    workload = Workload(args.workers, args.job_seconds, args.vip_load, args.regular_load,
                        args.max_wait, args.seconds, args.seed, args.regular_poisson,
                        args.job_spread)
    plot_path = None if str(args.plot) == "none" else args.plot
    return workload, args.store, plot_path


def parse_noisy_args(argv: list[str]) -> tuple[NoisyWorkload, str, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = NoisyWorkload()
    parser.add_argument("--scenario", choices=["noisy-neighbour"], required=True)
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--job-seconds", type=float, default=defaults.job_seconds)
    parser.add_argument("--job-spread", type=float, default=defaults.job_spread)
    parser.add_argument("--heavy", type=int, default=defaults.heavy,
                        help="orders the heavy customer queues at t=0")
    parser.add_argument("--light", type=int, default=defaults.light,
                        help="how many light customers")
    parser.add_argument("--light-every", type=float, default=defaults.light_every,
                        help="seconds between two orders of one light customer")
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--plot", type=Path, default=Path("docs/img/fairness.png"),
                        help="where to write the PNG; 'none' to skip")
    args = parser.parse_args(argv)
    workload = NoisyWorkload(args.workers, args.job_seconds, args.job_spread, args.heavy,
                             args.light, args.light_every, args.seconds, args.seed)
    return workload, args.store, None if str(args.plot) == "none" else args.plot


def noisy_main(argv: list[str]) -> int:
    workload, store_kind, plot_path = parse_noisy_args(argv)
    outcomes = asyncio.run(run_noisy(workload, store_kind))
    passed = report_noisy(workload, outcomes)
    if plot_path is not None:
        plot_noisy(workload, outcomes, store_kind, plot_path)
        print(f"plot: {plot_path}")
    return 0 if passed else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "noisy-neighbour" in args or "--scenario=noisy-neighbour" in args:
        return noisy_main(args)
    workload, store_kind, plot_path = parse_args(argv)
    outcome = asyncio.run(simulate(workload, store_kind))
    passed = report(workload, outcome)
    if plot_path is not None:
        plot(workload, outcome, store_kind, plot_path)
        print(f"plot: {plot_path}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
