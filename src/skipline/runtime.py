"""The process runtime: open the store, serve the API and/or run the workers (the pool, and the
lease reaper and pruner beside it), and shut down gracefully on SIGTERM/SIGINT (invariant 5,
docs/architecture.md; the signals themselves: skipline.shutdown_signals). Also
`skipline_context` and `skipline_app`, the same lifecycle for users' own aiohttp applications."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from skipline.api import METRICS, SERVICE, create_app
from skipline.api.access_log import AccessLogger, access_logger
from skipline.api.protocol import ProblemAppRunner
from skipline.clock import Clock
from skipline.config import Settings
from skipline.database import check_location
from skipline.database import display_url as display_url  # where callers found it first
from skipline.domain.errors import ConfigError, StoreUnavailable
from skipline.handlers import Handler
from skipline.maintenance import Maintenance
from skipline.metrics import Metrics
from skipline.process_log import log_database, log_started, log_stopped, queue_counts
from skipline.registry import Handlers, registry_for
from skipline.service import OrderService
from skipline.shutdown_signals import FAST_EXIT_CODE, ShutdownSignals
from skipline.store import open_store
from skipline.store.base import Store
from skipline.worker import WorkerPool

logger = logging.getLogger("skipline")

API_SHUTDOWN_TIMEOUT = 5.0
"""Seconds in-flight HTTP requests get to finish once the worker drain is over."""

POOL = web.AppKey("skipline.pool", WorkerPool)

YOUNG_COLLECTION_EVERY = 20_000
"""Container allocations between two collections of the youngest generation (CPython: 700)."""


def tune_garbage_collector() -> None:
    """For a `skipline serve`/`worker` process, not for a library user's: what is alive at
    start (modules, settings, the app) is moved out of the collector's sight, and the youngest
    generation is collected every 20,000 allocations rather than 700. A request allocates a
    few dozen tracked objects and reference counting frees nearly all of them, so the frequent
    young collections cost ~3 % of the CPU under load and found next to nothing."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, oldest)


async def open_ready_store(settings: Settings) -> Store:
    """The store named by `settings.db`, opened and migrated. A bad URL raises ConfigError; a
    store that cannot be opened raises StoreUnavailable with a one-line reason."""
    store = open_store(settings.db, durability=settings.durability)
    await open_ready(store, settings)
    return store


async def open_ready(store: Store, settings: Settings) -> None:
    """Open and migrate a built store (open_ready_store's second half). A SQLite file in a
    directory that does not exist is refused (ConfigError), not created."""
    check_location(settings.db)
    try:
        await store.open()
    except ConfigError:
        raise
    except Exception as exc:  # any driver error: the caller gets one clear line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreUnavailable(
            f"cannot open the store {display_url(settings.db)}: {reason}"
        ) from exc


class Workers:
    """The worker side of a process: a WorkerPool, and beside it the lease reaper and the
    pruner that every process running workers runs (the pool does not start them). `metrics`,
    when given, counts what the pruner deletes."""

    def __init__(
        self, store: Store, settings: Settings, handler: Handler | Handlers, *,
        metrics: Metrics | None = None, clock: Clock | None = None, worker_id: str | None = None,
    ) -> None:
        self.pool = WorkerPool(store, settings, handler, clock=clock, worker_id=worker_id)
        self.maintenance = Maintenance(store, settings, metrics)

    async def start(self) -> None:
        """What expired while no worker was looking is rescued before the first claim."""
        await self.maintenance.start()
        await self.pool.start()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a grace period, not a cancel
        """Drain the pool (WorkerPool.drain), then stop the maintenance. Idempotent."""
        try:
            await self.pool.drain(timeout)
        finally:
            await self.maintenance.stop()

    async def stop(self) -> None:
        """Drain with the configured `drain_timeout` unless already drained. Idempotent."""
        await self.drain(self.pool.settings.drain_timeout)


async def run(
    settings: Settings, *, api: bool, workers: bool, shutdown: asyncio.Event | None = None,
    access_log: bool = False,
) -> int:
    """Run until SIGTERM/SIGINT (or until `shutdown` is set), then drain; the exit code (130
    after a fast exit: see skipline.shutdown_signals). The signal handlers stay installed
    until the store is closed. `access_log` logs every request to `skipline.access`."""
    handlers = process_handlers(settings, workers)
    shutdown = shutdown or asyncio.Event()
    hurry = _Hurry()
    signals = ShutdownSignals(shutdown, on_fast_exit=hurry)
    signals.install()
    try:
        plan = _Plan(handlers, workers, api, access_log)
        code = await _run_with_store(settings, plan, shutdown, hurry)
    finally:
        signals.remove()
    return FAST_EXIT_CODE if code == 0 and hurry.requested else code


def process_handlers(settings: Settings, workers: bool) -> Handlers | None:
    """The kinds this process serves: its workers' registry (`--handlers`, else `--handler`
    for the kind `default`), or the one `--handlers` names for an API-only process; None for
    an API-only process without one, which accepts any valid kind."""
    if (workers and settings.workers > 0) or settings.handlers is not None:
        return registry_for(settings.handler, settings.handlers)
    return None


def order_service(store: Store, settings: Settings, handlers: Handlers | None) -> OrderService:
    """The service of a process serving `handlers` (None: any kind)."""
    return OrderService(store, settings, kinds=None if handlers is None else handlers.names)


@dataclass(frozen=True)
class _Plan:
    """What this process runs: the kinds it serves (None: any, API only), whether it runs
    workers for them, the API."""

    handlers: Handlers | None
    workers: bool
    api: bool
    access_log: bool

    @property
    def pool_handlers(self) -> Handlers | None:
        return self.handlers if self.workers else None


class _Hurry:
    """The fast exit's way to the worker pool, which exists only once the store is open."""

    def __init__(self) -> None:
        self.requested = False
        self.pool: WorkerPool | None = None

    def __call__(self) -> None:
        self.requested = True
        if self.pool is not None:
            self.pool.hurry()

    def watch(self, pool: WorkerPool) -> None:
        self.pool = pool
        if self.requested:
            pool.hurry()


async def _run_with_store(
    settings: Settings, plan: _Plan, shutdown: asyncio.Event, hurry: _Hurry
) -> int:
    try:
        store = await open_ready_store(settings)
    except StoreUnavailable as exc:
        logger.error("%s", exc.detail)
        return 1
    log_database(settings)
    try:
        return await _run_parts(
            order_service(store, settings, plan.handlers), plan, shutdown, hurry)
    finally:
        await store.close()


async def _run_parts(
    service: OrderService, plan: _Plan, shutdown: asyncio.Event, hurry: _Hurry
) -> int:
    parts = _Parts(service)
    try:
        if plan.api and not await parts.start_api(plan.access_log):
            return 1
        if plan.pool_handlers is not None:
            hurry.watch(await parts.start_pool(plan.pool_handlers))
        found = await queue_counts(service.store)
        log_started(service.settings, plan.api, plan.pool_handlers is not None, found)
        await shutdown.wait()
        await parts.shut_down()
        log_stopped(await queue_counts(service.store), fast=hurry.requested)
        return 0
    finally:
        await parts.close()


class _Parts:
    """The HTTP site and the workers of one process, started and stopped together, and the
    metrics they share."""

    def __init__(self, service: OrderService) -> None:
        self.service = service
        self.metrics = Metrics()
        self.runner: web.AppRunner | None = None
        self.workers: Workers | None = None

    async def start_api(self, access_log: bool) -> bool:
        """Listen on settings.host:port; False (after one log line) if that is impossible."""
        settings = self.service.settings
        self.runner = ProblemAppRunner(
            create_app(self.service, self.metrics),
            shutdown_timeout=API_SHUTDOWN_TIMEOUT,
            access_log=access_logger() if access_log else None,
            access_log_class=AccessLogger,
            keepalive_timeout=settings.keepalive_timeout,
            head_timeout=settings.head_timeout,
        )
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, settings.host, settings.port).start()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            logger.error("cannot listen on %s:%s: %s", settings.host, settings.port, reason)
            return False
        return True

    async def start_pool(self, handler: Handlers) -> WorkerPool:
        self.workers = Workers(
            self.service.store, self.service.settings, handler, metrics=self.metrics)
        await self.workers.start()
        return self.workers.pool

    async def shut_down(self) -> None:
        """Invariant 5: refuse new orders (503; the site stays up meanwhile), drain the
        workers, then close the site. Queued and released orders stay in the store."""
        self.service.accepting = False
        if self.workers is not None:
            timeout = self.service.settings.drain_timeout
            logger.info("waiting up to %gs for running orders to finish", timeout)
            await self.workers.drain(timeout)
        await self.close()

    async def close(self) -> None:
        """Stop whatever was started; safe to call twice."""
        workers, self.workers = self.workers, None
        runner, self.runner = self.runner, None
        if workers is not None:
            await workers.stop()
        if runner is not None:
            await runner.cleanup()


def skipline_context(
    settings: Settings, *, workers: bool = True
) -> Callable[[web.Application], AsyncIterator[None]]:
    """For `app.cleanup_ctx.append(...)` in your own aiohttp app: opens the store, keeps the
    OrderService at `app[SERVICE]` (and the WorkerPool at `app[POOL]` when `workers`), and on
    cleanup stops accepting, drains the pool and closes the store. Mounts no routes (for the
    routes too, mount `skipline_app(settings)`)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        store = open_store(settings.db, durability=settings.durability)
        service = order_service(store, settings, process_handlers(settings, workers))
        app[SERVICE] = service
        async for _ in _service_running(app, service, workers):
            yield

    return context


def skipline_app(settings: Settings, *, workers: bool = True) -> web.Application:
    """The HTTP API as an application that runs its own store and worker pool: mount it in
    yours with `app.add_subapp("/orders-api/", skipline_app(settings))` (routes, dashboard and
    docs under that prefix), or run it alone. The service is built at once, so the routes
    exist before your application starts; the store opens, and the pool starts, when it
    starts, and on cleanup the pool drains (invariant 5) before the store closes."""
    store = open_store(settings.db, durability=settings.durability)
    service = order_service(store, settings, process_handlers(settings, workers))
    app = create_app(service)

    async def context(app: web.Application) -> AsyncIterator[None]:
        async for _ in _service_running(app, service, workers):
            yield

    app.cleanup_ctx.append(context)
    return app


async def _service_running(
    app: web.Application, service: OrderService, workers: bool
) -> AsyncIterator[None]:
    """Open the service's store and start a pool; yield once while they serve; then stop
    accepting, drain the pool and close the store."""
    settings = service.settings
    await open_ready(service.store, settings)
    running: Workers | None = None
    try:
        if workers and settings.workers > 0:
            running = Workers(service.store, settings,
                              registry_for(settings.handler, settings.handlers),
                              metrics=app.get(METRICS))
            app[POOL] = running.pool
            await running.start()
        yield
        service.accepting = False
        if running is not None:
            await running.drain(settings.drain_timeout)
    finally:
        if running is not None:
            await running.stop()
        await service.store.close()
