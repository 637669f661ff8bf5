"""What every scenario shares: a work directory, the history, the servers it started, and the
ending — bring every server back without faults, drain, read the store, resolve the unknowns,
stop, check."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from faults.checker import Report, awaiting_callbacks, check, order_key
from faults.client import OrderShape, Recorder, load
from faults.finishes import FinishCounter
from faults.history import Answer, History
from faults.journal import Run, read_runs
from faults.observe import all_orders, wait_drained
from faults.partition import PartitionProxy
from faults.process import ServerConfig, ServerProcess
from faults.receiver import CallbackReceiver
from skipline.domain.models import Order

DRAIN_TIMEOUT = 60.0
"""Seconds the ending waits for every order to reach a final status."""


@dataclass(slots=True)
class Context:
    """One scenario run."""

    name: str
    workdir: Path
    history: History = field(default_factory=History)
    servers: list[ServerProcess] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    """The store's final state, once `finish` has read it."""
    runs: list[Run] = field(default_factory=list)
    """The handler journal, once `finish` has read it."""
    receiver: CallbackReceiver | None = None
    """Set by scenarios that run with callbacks on (`with_callbacks`)."""
    proxies: list[PartitionProxy] = field(default_factory=list)
    """Partition proxies between servers and the database (`proxy_to`); healed by `finish`."""
    finishes: FinishCounter | None = None
    """Set by scenarios that count the database's finish announcements (`count_finishes`)."""

    @property
    def journal(self) -> Path:
        return self.workdir / "journal.jsonl"

    def sqlite_url(self, directory: Path | None = None) -> str:
        return f"sqlite:///{(directory or self.workdir) / 'orders.db'}"

    def server(self, config: ServerConfig, name: str = "server") -> ServerProcess:
        server = ServerProcess(config, self.workdir, name)
        self.servers.append(server)
        return server

    def urls(self) -> list[str]:
        return [server.base_url for server in self.servers]

    async def with_callbacks(self) -> tuple[str, ...]:
        """Start a receiver; the flags that make a server deliver to it."""
        self.receiver = CallbackReceiver()
        await self.receiver.start()
        return ("--config", str(self.receiver.config_file(self.workdir)))

    async def proxy_to(self, db_url: str) -> PartitionProxy:
        """A partition proxy in front of the database; a server reaches the database through
        it with `proxy.url_through(db_url)` as its --db."""
        proxy = await PartitionProxy.to_url(db_url, seed=len(self.proxies))
        self.proxies.append(proxy)
        return proxy

    async def count_finishes(self, db_url: str) -> None:
        """Listen to the database's finish announcements for the rest of the run."""
        self.finishes = FinishCounter()
        await self.finishes.start(db_url)

    async def kill(self, server: ServerProcess, kind: str = "SIGKILL") -> None:
        """Kill a server at once, recording the fault just before the signal."""
        self.history.fault(kind, server.pid)
        await server.kill()

    async def finish(self, db_url: str, drain_timeout: float = DRAIN_TIMEOUT) -> Report:
        """Restart what is down (no fault armed), drain, read the final state, resolve the
        unknowns, stop every server and check the history against the store."""
        for proxy in self.proxies:
            proxy.heal()
        for server in self.servers:
            if not server.running:
                await server.start()
        drained = await wait_drained(db_url, drain_timeout)
        self.orders = orders = await all_orders(db_url)
        inconsistent = await resolve_unknowns(self.history, orders, self.servers[0].base_url)
        undelivered: set[str] = set()
        if self.receiver is not None:
            undelivered = await self.receiver.undelivered(awaiting_callbacks(orders),
                                                          drain_timeout)
        stop_codes = [await server.stop() for server in self.servers]
        self.runs = read_runs(self.journal)
        report = check(self.name, self.history, orders, self.runs, undelivered)
        report.workdir = str(self.workdir)
        if self.finishes is not None:
            await self.finishes.stop()  # every server has stopped: nothing more can finish
            twice = self.finishes.twice()
            report.finished_twice = len(twice)
            if twice:
                report.examples["finished_twice"] = twice[:5]
        report.expect("drained", drained, drained)
        report.expect("inconsistent_reposts", inconsistent == 0, inconsistent)
        report.expect("clean_exits", all(c == 0 for c in stop_codes), stop_codes)
        self.history.save(self.workdir / "history.jsonl")
        return report


@asynccontextmanager
async def scenario(name: str) -> AsyncIterator[Context]:
    """A fresh work directory and history; on the way out every server still running is
    killed. The directory stays (see `finished`): a failed run is diagnosed from it."""
    context = Context(name, Path(tempfile.mkdtemp(prefix=f"skipline-faults-{name}-")))
    try:
        yield context
    finally:
        for server in context.servers:
            if server.running:
                await server.kill()
        if context.receiver is not None:
            await context.receiver.stop()
        if context.finishes is not None:
            await context.finishes.stop()
        for proxy in context.proxies:
            await proxy.stop()


KEEP_WORKDIR = "FAULTS_KEEP_WORKDIR"
"""Set (to anything) to keep even a passed run's work directory: its processes' logs."""


def finished(report: Report) -> Report:
    """Remove a passed run's work directory (a failed one stays for diagnosis)."""
    if report.passed and not os.environ.get(KEEP_WORKDIR):
        shutil.rmtree(report.workdir, ignore_errors=True)
    return report


async def resolve_unknowns(history: History, orders: list[Order], base_url: str) -> int:
    """Re-POST every unknown with its own Idempotency-Key, as a client would, and count the
    answers that contradict the store's snapshot: a key the store holds must come back 200
    with the same id; a key it does not hold must be accepted anew (202)."""
    by_key = {key: o for o in orders if (key := order_key(o)) is not None}
    inconsistent = 0
    async with Recorder(History(), [base_url]) as client:
        for submission in history.submissions:
            if submission.outcome is not Answer.UNKNOWN:
                continue
            body = submission.body or {"payload": {"key": submission.key}, "duration": 0}
            status, order_id = await client.repost(submission.key, body,
                                                   api_key=submission.api_key)
            held = by_key.get(submission.key)
            expected = status == 200 and order_id == held.id if held else status == 202
            inconsistent += not expected
    return inconsistent


@asynccontextmanager
async def under_load(
    context: Context, clients: int, shape: OrderShape, pause: float = 0.05, seed: int = 0,
    urls: list[str] | None = None,
) -> AsyncIterator[Recorder]:
    """Clients submitting to every server of the context (or to `urls`) for as long as the
    block runs."""
    stop = asyncio.Event()
    async with Recorder(context.history, urls or context.urls()) as recorder:
        task = asyncio.create_task(load(recorder, stop, clients, shape, pause, seed))
        try:
            yield recorder
        finally:
            stop.set()
            await task


async def wait_for_acks(history: History, count: int, timeout: float) -> bool:  # noqa: ASYNC109
    """Wait until `count` more submissions are acknowledged than now (load is flowing)."""
    target = history.count(Answer.ACKNOWLEDGED) + count
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if history.count(Answer.ACKNOWLEDGED) >= target:
            return True
        await asyncio.sleep(0.02)
    return False


async def wait_final(
    base_urls: list[str], order_ids: list[str], timeout: float  # noqa: ASYNC109
) -> dict[str, str]:
    """Poll GET /orders/{id} (on whichever server answers) until every order is final or
    `timeout` passes; returns the last status seen of each."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    final = {"succeeded", "failed", "cancelled"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            for order_id in order_ids:
                if seen.get(order_id) not in final:
                    seen[order_id] = await _status_of(session, base_urls, order_id)
            if all(seen.get(order_id) in final for order_id in order_ids):
                break
            await asyncio.sleep(0.2)
    return seen


async def _status_of(session: aiohttp.ClientSession, base_urls: list[str], order_id: str) -> str:
    for base_url in base_urls:
        try:
            async with session.get(f"{base_url}/orders/{order_id}") as response:
                if response.status == 200:
                    return str((await response.json())["status"])
        except (aiohttp.ClientError, TimeoutError):
            continue
    return "unreachable"


@asynccontextmanager
async def supervised(context: Context, server: ServerProcess) -> AsyncIterator[list[float]]:
    """Restart `server` whenever it dies on its own, like systemd's Restart=always. Yields the
    list of the deaths' times (each is also a fault in the history), growing as they happen."""
    deaths: list[float] = []
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            if not server.running:
                context.history.fault("died", server.pid)
                deaths.append(time.time())
                with suppress(RuntimeError):  # it may die again while starting
                    await server.start()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    task = asyncio.create_task(watch())
    try:
        yield deaths
    finally:
        stop.set()
        await task


def statuses_between(history: History, start: float, end: float) -> dict[str, int]:
    """What the clients were told about the submissions sent between `start` and `end` (a
    fault's window): outcome -> count, refusals by status (`refused_503`)."""
    told = Counter(
        s.outcome.value if s.outcome is not Answer.REFUSED else f"refused_{s.status}"
        for s in history.submissions if start <= s.sent_at < end
    )
    return dict(told)
