"""The soak: a long run of mixed load on PostgreSQL with two API processes (`--no-workers`)
and two worker processes, each behind a partition proxy of its own, callbacks on, and a fault
at random every few seconds: SIGKILL and restart, graceful restart (SIGTERM), a blackholed
process, a slow network, connections reset.

One API process and one worker process (the "steady" ones) are never killed or restarted, only
cut off and slowed: their memory (RSS), file descriptors and database connections are sampled
over the whole run, so a leak shows as a slope or as counts that grow from start to end. The
other two take the kills and restarts.

`python -m faults.run soak` runs it for two minutes, `--long` for thirty; any other length:
`python -m faults.scenarios.soak SECONDS`.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from dataclasses import dataclass, field, replace

from faults.checker import Report
from faults.client import OrderShape
from faults.partition import PartitionProxy
from faults.postgres import any_database
from faults.process import ServerConfig, ServerProcess
from faults.scenario import Context, finished, scenario, under_load, wait_for_acks
from skipline.store.postgres.store import LEASE_POOL_SIZE, POOL_SIZE

FAULTS = ("kill", "restart", "partition", "slow", "cut")
CONNECTION_CAP = POOL_SIZE + LEASE_POOL_SIZE + 1
"""Connections one process may hold: its pool, the connections reserved for renewals, and its
listener (13)."""
RSS_SLOPE_LIMIT = 1.0
"""MiB per minute a steady process's RSS may grow over the second half of the run."""
FD_GROWTH_LIMIT = 10
"""File descriptors a steady process may hold at the end beyond those it held once warmed up
(a quarter into the run: its pools fill first), not counting its database connections (each
is a descriptor; the pool grows under load up to its cap, which is checked on its own)."""


@dataclass(frozen=True, slots=True)
class Soak:
    seconds: float = 1800.0
    gap: tuple[float, float] = (8.0, 25.0)
    """Seconds between the end of one fault and the next (uniform)."""
    workers: int = 4
    clients: int = 2
    pause: float = 0.25
    """Between one client's submissions: the load stays under what the workers can do, so
    the queue does not grow without bound over half an hour."""
    sample_every: float = 10.0
    seed: int = 18


SHORT = Soak(seconds=120.0, gap=(4.0, 10.0))
LONG = Soak()


@dataclass(slots=True)
class Sample:
    at: float
    rss_mib: float
    fds: int
    connections: int


@dataclass(slots=True)
class Watched:
    """One process and its proxy, sampled while it runs (samples of its latest life only)."""

    server: ServerProcess
    proxy: PartitionProxy
    steady: bool
    samples: list[Sample] = field(default_factory=list)
    pid: int | None = None

    def sample(self) -> None:
        pid = self.server.pid
        if pid is None or not self.server.running:
            return
        if pid != self.pid:
            self.pid, self.samples = pid, []
        try:
            rss = _rss_mib(pid)
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            return
        self.samples.append(Sample(time.time(), rss, fds, self.proxy.open_connections))

    def summary(self) -> dict[str, object]:
        samples = self.samples
        half = samples[len(samples) // 2:]
        points = [samples[0], _warmed(samples), samples[-1]] if samples else []
        return {
            "steady": self.steady, "starts": self.server.starts, "samples": len(samples),
            "rss_mib_start_warm_end": [round(p.rss_mib, 1) for p in points],
            "rss_slope_mib_per_min_second_half": _slope(half),
            "fds_start_warm_end": [p.fds for p in points],
            "connections_start_warm_end": [p.connections for p in points],
        }


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmRSS")


def _slope(samples: list[Sample]) -> float | None:
    """Least-squares slope of RSS against time, MiB per minute."""
    if len(samples) < 3:
        return None
    xs = [s.at / 60 for s in samples]
    ys = [s.rss_mib for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return round(sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread, 3)


async def run(params: Soak = SHORT) -> Report:
    async with scenario("soak") as context, any_database() as url:
        await context.count_finishes(url)
        flags = await context.with_callbacks()
        assert context.receiver is not None
        watched = [
            await _watched(context, url, name, steady, flags, workers)
            for name, steady, workers in (
                ("api1", True, 0), ("api2", False, 0),
                ("worker1", True, params.workers), ("worker2", False, params.workers),
            )
        ]
        await asyncio.gather(*(w.server.start() for w in watched))
        shape = OrderShape(0.0, 0.5, callback_url=context.receiver.url + "/hook/")
        rng = random.Random(params.seed)
        kinds: list[str] = []
        api_urls = [w.server.base_url for w in watched if w.server.name.startswith("api")]
        sampler = asyncio.create_task(_sample(watched, params.sample_every))
        try:
            async with under_load(context, params.clients, shape, pause=params.pause,
                                  seed=params.seed, urls=api_urls):
                await wait_for_acks(context.history, 10, timeout=30)
                deadline = time.monotonic() + params.seconds
                while time.monotonic() < deadline:
                    await asyncio.sleep(min(rng.uniform(*params.gap),
                                            max(0.0, deadline - time.monotonic())))
                    if time.monotonic() < deadline:
                        kinds.append(await _inject(context, watched, rng))
                flowing = await wait_for_acks(context.history, 10, timeout=30)
        finally:
            sampler.cancel()
        for each in watched:
            each.sample()
        report = await context.finish(url, drain_timeout=120)
        _check(report, watched, kinds, flowing, context)
        return finished(report)


async def _watched(context: Context, url: str, name: str, steady: bool,
                   flags: tuple[str, ...], workers: int) -> Watched:
    proxy = await context.proxy_to(url)
    role = ("--no-workers",) if workers == 0 else ()
    config = ServerConfig(proxy.url_through(url), workers=max(1, workers), flags=(*flags, *role))
    return Watched(context.server(config, name), proxy, steady)


async def _sample(watched: list[Watched], every: float) -> None:
    while True:
        for each in watched:
            each.sample()
        await asyncio.sleep(every)


async def _inject(context: Context, watched: list[Watched], rng: random.Random) -> str:
    """One fault, chosen at random, on a process chosen at random (kills and restarts only on
    the processes that are not steady); returns its kind once it is over."""
    kind = rng.choice(FAULTS)
    if kind in ("kill", "restart"):
        target = rng.choice([w for w in watched if not w.steady])
        if kind == "kill":
            await context.kill(target.server)
        else:
            context.history.fault("sigterm_restart", target.server.pid)
            await target.server.stop()
        await target.server.start()
        return kind
    target = rng.choice(watched)
    context.history.fault(kind, target.server.pid)
    if kind == "partition":
        target.proxy.blackhole()
        await asyncio.sleep(rng.uniform(2.0, 6.0))
    elif kind == "slow":
        target.proxy.slow(0.05, 0.2)
        await asyncio.sleep(rng.uniform(5.0, 15.0))
    else:
        target.proxy.cut()
        await asyncio.sleep(1.0)
    target.proxy.heal()
    return kind


def _check(report: Report, watched: list[Watched], kinds: list[str], flowing: bool,
           context: Context) -> None:
    report.expect("faults_injected", len(kinds) > 0, {k: kinds.count(k) for k in FAULTS})
    report.expect("accepting_after_last_fault", flowing, flowing)
    processes = {w.server.name: w.summary() for w in watched}
    report.checks["processes"] = processes
    steady = [w for w in watched if w.steady]
    report.expect("steady_never_restarted", all(w.server.starts == 1 for w in steady),
                  [w.server.starts for w in steady])
    slopes = [_slope(w.samples[len(w.samples) // 2:]) for w in steady]
    report.expect("steady_rss_flat", all(s is None or s <= RSS_SLOPE_LIMIT for s in slopes),
                  slopes)
    fd_growth = [_other_fds(w.samples[-1]) - _other_fds(_warmed(w.samples)) for w in steady
                 if w.samples]
    report.expect("steady_fds_not_growing", all(g <= FD_GROWTH_LIMIT for g in fd_growth),
                  fd_growth)
    ends = [w.samples[-1].connections for w in watched if w.samples]
    report.expect("connections_within_cap", all(c <= CONNECTION_CAP for c in ends), ends)
    receiver = context.receiver
    if receiver is not None:
        report.expect("callbacks_signed", receiver.bad_signatures == 0, receiver.bad_signatures)
        report.checks["callbacks_delivered"] = len(receiver.delivered)


def _warmed(samples: list[Sample]) -> Sample:
    """The sample a quarter into the run, once the process's pools have filled."""
    return samples[len(samples) // 4]


def _other_fds(sample: Sample) -> int:
    return sample.fds - sample.connections


def main(argv: list[str]) -> int:
    """`python -m faults.scenarios.soak [SECONDS]`: the soak for any length (default: short)."""
    params = replace(SHORT, seconds=float(argv[0])) if argv else SHORT
    report = asyncio.run(run(params))
    print(report.to_json(), flush=True)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
