"""The lines a `skipline serve`/`worker` process writes when it starts and stops: where to
look (dashboard, docs), which database it opened, and what it found and leaves in the queue,
so that whoever reads the log knows what a start resumed and what a stop left behind."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from skipline.config import Settings
from skipline.database import describe
from skipline.logs import fields
from skipline.store.base import Store

logger = logging.getLogger("skipline")

COUNT_SECONDS = 2.0
"""How long a start or stop line waits for the store's counts before it goes without them."""
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}
"""Listening on every address: the URLs in the log name this machine's loopback instead."""


@dataclass(frozen=True)
class QueueCounts:
    queued: int
    running: int


async def queue_counts(store: Store) -> QueueCounts | None:
    """Queued and running orders over all tiers; None when the store does not answer soon."""
    try:
        async with asyncio.timeout(COUNT_SECONDS):
            stats = await store.stats()
    except Exception:  # a log line must not stop a start or a stop
        return None
    counts = stats.counts.values()
    return QueueCounts(sum(c.queued for c in counts), sum(c.running for c in counts))


def base_url(settings: Settings) -> str:
    host = WILDCARD_HOSTS.get(settings.host, settings.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def log_database(settings: Settings) -> None:
    where = describe(settings.db)
    logger.info("database: %s", where, extra=fields("database.opened", db=where))


def log_started(
    settings: Settings, api: bool, workers: bool, found: QueueCounts | None
) -> None:
    slots = settings.workers if workers else 0
    served = (f"handlers {settings.handlers}" if settings.handlers is not None
              else f"handler {settings.handler}")
    role = f"{slots} worker slot(s), {served}" if workers else "no workers"
    if api:
        url = base_url(settings)
        logger.info(
            "skipline serving on %s (%s): dashboard at %s/ and API docs at %s/docs", url, role, url,
            url, extra=fields("skipline.started", url=url + "/", docs_url=url + "/docs"),
        )
    else:
        logger.info("skipline worker running (%s)", role, extra=fields("skipline.started"))
    _log_found(found, workers)


def _log_found(found: QueueCounts | None, workers: bool) -> None:
    if found is None:
        logger.warning("could not count the orders in the store at start",
                       extra=fields("queue.found"))
        return
    resumes = "this process works on them now" if workers else "no workers in this process"
    if found.running:
        resumes += ("; running ones belong to another process, or to one that stopped: then "
                    "they are queued again when their lease expires")
    logger.info(
        "found %d queued and %d running order(s): %s", found.queued, found.running, resumes,
        extra=fields("queue.found", queued=found.queued, running=found.running),
    )


def log_stopped(left: QueueCounts | None, fast: bool) -> None:
    how = "stopped at once (second Ctrl-C)" if fast else "stopped cleanly"
    if left is None:
        logger.info("skipline %s; could not count the orders left in the store", how,
                    extra=fields("skipline.stopped"))
        return
    logger.info(
        "skipline %s: %d order(s) remain queued and %d running for the next start or "
        "another process", how, left.queued, left.running,
        extra=fields("skipline.stopped", queued=left.queued, running=left.running),
    )
