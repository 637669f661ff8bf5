"""The process runtime: open the store, serve the API and/or run the workers (the pool, and the
lease reaper and pruner beside it), and shut down gracefully on SIGTERM/SIGINT (invariant 5
(docs/architecture.md)). Also `skipline_context` and `skipline_app`, the same lifecycle for
users' own aiohttp applications."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from skipline.api import METRICS, SERVICE, create_app
from skipline.api.protocol import ProblemAppRunner
from skipline.clock import Clock
from skipline.config import Settings
from skipline.domain.errors import ConfigError, StoreUnavailable
from skipline.handlers import Handler, load_handler
from skipline.maintenance import Maintenance
from skipline.metrics import Metrics
from skipline.service import OrderService
from skipline.store import open_store
from skipline.store.base import Store
from skipline.worker import WorkerPool

logger = logging.getLogger("skipline")

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
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


def display_url(url: str) -> str:
    """A database URL fit for logs: any password is replaced by '***'."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


async def open_ready_store(settings: Settings) -> Store:
    """The store named by `settings.db`, opened and migrated. A bad URL raises ConfigError; a
    store that cannot be opened raises StoreUnavailable with a one-line reason."""
    store = open_store(settings.db, durability=settings.durability)
    await open_ready(store, settings)
    return store


async def open_ready(store: Store, settings: Settings) -> None:
    """Open and migrate a built store (open_ready_store's second half)."""
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
        self, store: Store, settings: Settings, handler: Handler, *,
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


class ShutdownSignals:
    """SIGTERM/SIGINT set one event; repeats while already shutting down are logged and
    ignored, so an impatient supervisor cannot break the drain."""

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event
        self.received = 0

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for number in SHUTDOWN_SIGNALS:
            loop.add_signal_handler(number, self._on_signal, number)

    def remove(self) -> None:
        """Give the signals back. Once a signal has started the shutdown, later ones are
        ignored until the process exits, so they cannot kill it while it finishes."""
        loop = asyncio.get_running_loop()
        for number in SHUTDOWN_SIGNALS:
            loop.remove_signal_handler(number)
            if self.received:
                signal.signal(number, signal.SIG_IGN)

    def _on_signal(self, number: signal.Signals) -> None:
        self.received += 1
        if self.event.is_set():
            logger.info("%s received again; already shutting down, ignored", number.name)
            return
        logger.info("%s received: draining (no new orders accepted)", number.name)
        self.event.set()


async def run(
    settings: Settings, *, api: bool, workers: bool, shutdown: asyncio.Event | None = None
) -> int:
    """Run until SIGTERM/SIGINT (or until `shutdown` is set), then drain; the exit code.
    The signal handlers stay installed until the store is closed."""
    handler = load_handler(settings.handler) if workers else None
    shutdown = shutdown or asyncio.Event()
    signals = ShutdownSignals(shutdown)
    signals.install()
    try:
        code = await _run_with_store(settings, handler, api, shutdown)
    finally:
        signals.remove()
    if code == 0:
        logger.info("skipline stopped cleanly")
    return code


async def _run_with_store(
    settings: Settings, handler: Handler | None, api: bool, shutdown: asyncio.Event
) -> int:
    try:
        store = await open_ready_store(settings)
    except StoreUnavailable as exc:
        logger.error("%s", exc.detail)
        return 1
    try:
        return await _run_parts(OrderService(store, settings), handler, api, shutdown)
    finally:
        await store.close()


async def _run_parts(
    service: OrderService, handler: Handler | None, api: bool, shutdown: asyncio.Event
) -> int:
    parts = _Parts(service)
    try:
        if api and not await parts.start_api():
            return 1
        if handler is not None:
            await parts.start_pool(handler)
        _log_started(service.settings, api, handler is not None)
        await shutdown.wait()
        await parts.shut_down()
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

    async def start_api(self) -> bool:
        """Listen on settings.host:port; False (after one log line) if that is impossible."""
        settings = self.service.settings
        debug = logger.isEnabledFor(logging.DEBUG)
        self.runner = ProblemAppRunner(
            create_app(self.service, self.metrics),
            shutdown_timeout=API_SHUTDOWN_TIMEOUT,
            access_log=logging.getLogger("aiohttp.access") if debug else None,
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

    async def start_pool(self, handler: Handler) -> None:
        self.workers = Workers(
            self.service.store, self.service.settings, handler, metrics=self.metrics)
        await self.workers.start()

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


def _log_started(settings: Settings, api: bool, workers: bool) -> None:
    db = display_url(settings.db)
    slots = settings.workers if workers else 0
    if api:
        logger.info(
            "skipline serving on http://%s:%s (db=%s, workers=%d, handler=%s)",
            settings.host, settings.port, db, slots, settings.handler,
        )
    else:
        logger.info(
            "skipline worker running (db=%s, concurrency=%d, handler=%s)",
            db, slots, settings.handler,
        )


def skipline_context(
    settings: Settings, *, workers: bool = True
) -> Callable[[web.Application], AsyncIterator[None]]:
    """For `app.cleanup_ctx.append(...)` in your own aiohttp app: opens the store, keeps the
    OrderService at `app[SERVICE]` (and the WorkerPool at `app[POOL]` when `workers`), and on
    cleanup stops accepting, drains the pool and closes the store. Mounts no routes (for the
    routes too, mount `skipline_app(settings)`)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        service = OrderService(open_store(settings.db, durability=settings.durability), settings)
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
    service = OrderService(open_store(settings.db, durability=settings.durability), settings)
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
            running = Workers(service.store, settings, load_handler(settings.handler),
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
