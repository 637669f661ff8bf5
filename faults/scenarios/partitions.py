"""PostgreSQL behind a broken network: every skipline process reaches the database through a
partition proxy of its own (faults/partition.py), and the scenario breaks one of them.

- worker partition: a worker process is blackholed while its handlers run, for longer than a
  lease; another process takes its orders over; after the heal the old worker's completions
  reach the database and must be refused by the fence, and it must carry on claiming;
- API partition: an API process is blackholed both ways, then one way (its statements reach
  the database, the answers do not: commits whose outcome it cannot know), then cut with
  resets, while clients submit: every answer within the 2 s bound, 202 or 503 (refused, or
  outcome unknown), and every unknown settled against the store;
- slow network: latency with jitter on every connection under load: heartbeats keep every
  lease, VIP orders still start first; throughput and accept latency are reported.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from faults.checker import Report
from faults.client import OrderShape, Recorder, submit_batch
from faults.journal import read_runs
from faults.partition import BOTH, Direction, PartitionProxy
from faults.postgres import any_database
from faults.process import ServerConfig, ServerProcess
from faults.scenario import (
    Context,
    finished,
    scenario,
    statuses_between,
    under_load,
    wait_final,
    wait_for_acks,
)
from skipline.domain.scheduling import percentile

ANSWER_BOUND = 2.0
"""Seconds within which a submission must be answered, even while the database is out of reach
(docs/reliability.md)."""
FENCED_LOG = "lease lost before completion; result dropped"
"""What a worker logs when the fence refuses its completion (worker/recorder.py)."""
LOAD = OrderShape(min_duration=0.0, max_duration=0.3)


@dataclass(frozen=True, slots=True)
class WorkerPartition:
    orders: int = 2
    """Orders the cut-off worker runs when the partition starts (one per slot)."""
    duration: float = 3.0
    """Seconds of their first run. The other process must take over before it ends (it starts
    as the partition does, is ready in about 1.5 s and finds the leases expired), and a run
    after a takeover lasts twice that (faults.handlers:slower_each_attempt), so the old
    worker's completion meets it."""
    lease_seconds: float = 1.0
    cut_seconds: float = 3.4
    """Longer than a lease and the takeover, and than the first run: the old worker's
    handlers end in the dark and record their results once the network heals."""
    clients: int = 2
    entry: str = "skipline"
    """faults.stale_fence plants a fencing bug the checker must catch."""


WORKER_SHORT = WorkerPartition(orders=1)
WORKER_LONG = WorkerPartition(orders=4, duration=3.0, cut_seconds=5.0, clients=4)
STALE_FENCE = WorkerPartition(orders=1, entry="faults.stale_fence")


async def run_worker_partition(params: WorkerPartition = WORKER_SHORT) -> Report:
    planted = params.entry != "skipline"
    name = "postgres_partition_stale_fence" if planted else "postgres_partition_worker"
    async with scenario(name) as context, any_database() as url:
        await context.count_finishes(url)
        cutoff, survivor = [
            context.server(ServerConfig(
                (await context.proxy_to(url)).url_through(url), workers=params.orders,
                handler="faults.handlers:slower_each_attempt",
                lease_seconds=params.lease_seconds, entry=params.entry,
            ), name=role) for role in ("cutoff", "survivor")
        ]
        await cutoff.start()
        shape = OrderShape(min_duration=params.duration, max_duration=params.duration)
        async with Recorder(context.history, [cutoff.base_url]) as recorder:
            posts = await submit_batch(recorder, params.orders, shape)
        batch = [p.order_id for p in posts if p.order_id is not None]
        held = await runs_started(context, cutoff, set(batch), params.orders)
        proxy = context.proxies[0]
        context.history.fault("blackhole_worker", cutoff.pid)
        proxy.blackhole()
        cut_at = time.time()
        await survivor.start()  # its first reaper pass finds the expired leases
        async with under_load(context, params.clients, LOAD, seed=3):
            await asyncio.sleep(max(0.0, cut_at + params.cut_seconds - time.time()))
            proxy.heal()
            healed_at = time.time()
            after = await submit_after_heal(context, cutoff, params.orders * 3)
            settled = await wait_final([survivor.base_url], [*batch, *after], timeout=40)
        alive = cutoff.running and cutoff.starts == 1
        report = await context.finish(url)
        report.must_be_valid = not planted
        check_worker_partition(report, context, cutoff, held, healed_at, alive, settled)
        if planted:
            report.expect("stale_results_caught", report.stale_results > 0, report.stale_results)
        return finished(report)


async def runs_started(context: Context, server: ServerProcess, order_ids: set[str],
                       count: int, timeout: float = 10.0) -> set[str]:  # noqa: ASYNC109
    """Wait until `server` runs `count` of `order_ids`; the ones it runs."""
    deadline = time.monotonic() + timeout
    running: set[str] = set()
    while time.monotonic() < deadline and len(running) < count:
        await asyncio.sleep(0.05)
        running = {r.order_id for r in read_runs(context.journal)
                   if r.pid == server.pid and r.order_id in order_ids}
    return running


async def submit_after_heal(context: Context, server: ServerProcess, count: int) -> list[str]:
    """Quick orders through the healed process's own API (it must answer again)."""
    async with Recorder(context.history, [server.base_url]) as recorder:
        await wait_for_acks(context.history, 1, timeout=5)
        posts = await submit_batch(recorder, count, OrderShape(0.2, 0.2), seed=7)
    return [p.order_id for p in posts if p.order_id is not None]


def check_worker_partition(
    report: Report, context: Context, cutoff: ServerProcess, held: set[str], healed_at: float,
    alive: bool, settled: dict[str, str],
) -> None:
    runs = context.runs
    pids = {order_id: {r.pid for r in runs if r.order_id == order_id} for order_id in held}
    taken_over = sum(1 for order_id in held if pids[order_id] - {cutoff.pid})
    claims_after = sum(1 for r in runs if r.pid == cutoff.pid and r.started > healed_at)
    fenced = cutoff.log_path.read_text(encoding="utf-8").count(FENCED_LOG)
    report.expect("cut_off_while_running", len(held) > 0, len(held))
    report.expect("taken_over", taken_over > 0, taken_over)
    report.expect("overlapping_runs_counted", report.overlapping_runs > 0, report.overlapping_runs)
    report.expect("completions_refused_by_fence", fenced > 0 or not report.must_be_valid, fenced)
    report.expect("cutoff_alive", alive, alive)
    report.expect("cutoff_claims_after_heal", claims_after > 0, claims_after)
    report.expect("all_final", all(s in ("succeeded", "failed") for s in settled.values()),
                  len(settled))


@dataclass(frozen=True, slots=True)
class ApiPartition:
    phases: tuple[str, ...] = ("blackhole", "answers_lost", "cut")
    """How the API process is cut off, in turn: both directions blackholed; only the way back
    (statements reach the database, their answers do not); connections reset."""
    phase_seconds: float = 3.0
    clients: int = 4
    workers: int = 4


API_SHORT = ApiPartition()
API_LONG = ApiPartition(phases=("blackhole", "answers_lost", "cut") * 3, phase_seconds=5.0)


async def run_api_partition(params: ApiPartition = API_SHORT) -> Report:
    async with scenario("postgres_partition_api") as context, any_database() as url:
        api = context.server(ServerConfig(
            (await context.proxy_to(url)).url_through(url), flags=("--no-workers",)), "api")
        worker = context.server(ServerConfig(
            (await context.proxy_to(url)).url_through(url), workers=params.workers), "worker")
        await asyncio.gather(api.start(), worker.start())
        proxy = context.proxies[0]
        spans: list[tuple[str, float, float]] = []
        async with under_load(context, params.clients, LOAD, seed=5, urls=[api.base_url]):
            for index, phase in enumerate(params.phases):
                await wait_for_acks(context.history, 10, timeout=15)
                context.history.fault(f"api_{phase}", api.pid)
                started = time.time()
                cut_api(proxy, phase)
                await asyncio.sleep(params.phase_seconds)
                proxy.heal()
                spans.append((f"{index}:{phase}", started, time.time()))
            flowing = await wait_for_acks(context.history, 10, timeout=15)
        windows = {name: statuses_between(context.history, start, end)
                   for name, start, end in spans}
        report = await context.finish(url)
        check_api_partition(report, context, windows, flowing)
        return finished(report)


def cut_api(proxy: PartitionProxy, phase: str) -> None:
    if phase == "blackhole":
        proxy.blackhole(BOTH)
    elif phase == "answers_lost":
        proxy.blackhole([Direction.DOWN])
    else:
        proxy.cut()


def check_api_partition(report: Report, context: Context, windows: dict[str, dict[str, int]],
                        flowing: bool) -> None:
    posts = context.history.submissions
    slowest = max((p.done_at - p.sent_at for p in posts), default=0.0)
    unanswered = sum(1 for p in posts if p.status is None)
    statuses = {p.status for p in posts}
    report.expect("slowest_answer_seconds", slowest <= ANSWER_BOUND, round(slowest, 3))
    report.expect("unanswered", unanswered == 0, unanswered)
    report.expect("statuses", statuses <= {200, 202, 503}, sorted(map(str, statuses)))
    settled = report.recovered + report.unknown_absent
    report.expect("unknowns_settled", settled == report.unknown, settled)
    report.expect("windows", all(w.get("refused_503", 0) + w.get("unknown", 0) > 0
                                 for w in windows.values()), windows)
    report.expect("accepting_after_heal", flowing, flowing)


@dataclass(frozen=True, slots=True)
class SlowNetwork:
    seconds: float = 60.0
    """How long every connection is slowed, under load."""
    latency: tuple[float, float] = (0.05, 0.2)
    processes: int = 2
    workers: int = 4
    clients: int = 3
    vip_clients: int = 2
    lease_seconds: float = 2.0
    """The harness's usual lease: renewed every 0.67 s through 100-400 ms round trips, on a
    connection reserved for renewals (a renewal never waits for the API's calls, nor for a
    connection to be opened)."""
    durations: tuple[float, float] = (0.1, 6.0)
    """Up to longer than a lease: heartbeats must renew through the latency."""
    drain_seconds: float = 180.0
    """The load is more than the slots can run (regular orders wait behind VIP ones), so the
    backlog left at the heal takes longer than the usual drain to run out."""


SLOW_SHORT = SlowNetwork(seconds=6.0, durations=(0.1, 5.5))
SLOW_LONG = SlowNetwork()


async def run_slow_network(params: SlowNetwork = SLOW_SHORT) -> Report:
    async with scenario("postgres_slow_network") as context, any_database() as url:
        for index in range(params.processes):
            proxy = await context.proxy_to(url)
            context.server(ServerConfig(proxy.url_through(url), workers=params.workers,
                                        lease_seconds=params.lease_seconds), f"server{index + 1}")
        await asyncio.gather(*(server.start() for server in context.servers))
        vip_key = await add_vip_key(url)
        regular = OrderShape(*params.durations)
        vip = OrderShape(*params.durations, payload={"vip": True}, api_key=vip_key)
        async with under_load(context, params.clients, regular, pause=0.1, seed=9), \
                under_load(context, params.vip_clients, vip, pause=0.2, seed=10):
            await wait_for_acks(context.history, 10, timeout=15)
            for proxy in context.proxies:
                proxy.slow(*params.latency)
            context.history.fault("slow_network")
            slowed_at = time.time()
            await asyncio.sleep(params.seconds)
            for proxy in context.proxies:
                proxy.heal()
            healed_at = time.time()
            opened = sum(proxy.accepted for proxy in context.proxies)
        report = await context.finish(url, drain_timeout=params.drain_seconds)
        report.checks["connections_opened"] = opened
        check_slow_network(report, context, slowed_at, healed_at)
        return finished(report)


async def add_vip_key(url: str) -> str:
    """A key of the VIP tier, made with the CLI as an operator would."""
    process = await asyncio.create_subprocess_exec(
        *ServerConfig(url).command()[:3], "keys", "add", "harness-vip", "--tier", "vip",
        "--db", url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError("could not create the VIP key")
    return out.decode().strip()


def check_slow_network(report: Report, context: Context, slowed_at: float,
                       healed_at: float) -> None:
    window = [o for o in context.orders if o.created_at >= slowed_at and o.created_at < healed_at]
    waits = {tier: [o.started_at - o.created_at for o in window
                    if o.tier == tier and o.started_at is not None] for tier in ("vip", "regular")}
    vip_wait, regular_wait = (percentile(waits[t], 0.5) for t in ("vip", "regular"))
    accepts = [p.done_at - p.sent_at for p in context.history.submissions
               if p.status == 202 and slowed_at <= p.sent_at < healed_at]
    done = sum(1 for o in context.orders
               if o.finished_at is not None and slowed_at <= o.finished_at < healed_at)
    rescued = sum(o.rescues for o in context.orders)
    report.expect("leases_kept", rescued == 0 and report.duplicate_runs == 0
                  and report.overlapping_runs == 0,
                  {"rescues": rescued, "duplicate_runs": report.duplicate_runs})
    report.expect("vip_p50_wait_seconds", vip_wait is not None and regular_wait is not None
                  and vip_wait <= regular_wait,
                  {"vip": round_or_none(vip_wait), "regular": round_or_none(regular_wait)})
    report.expect("throughput_per_second", done > 0, round(done / (healed_at - slowed_at), 2))
    # Reported, not bounded: the network is slow, not down (the 2 s bound is for outages);
    # what comes before the write (authentication, admission) pays round trips too.
    p99 = percentile(accepts, 0.99)
    report.expect("accept_p99_seconds", p99 is not None, round_or_none(p99))


def round_or_none(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
