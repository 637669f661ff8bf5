"""The last hour of the queue, kept in the serving process: a ring buffer of queue views
sampled every HISTORY_INTERVAL seconds, which the dashboard draws as charts. In memory only:
a restarted process starts a new history (the store holds no time series)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass

from skipline.clock import Clock, SystemClock
from skipline.domain.queueview import QueueView
from skipline.service import OrderService

log = logging.getLogger("skipline.history")

HISTORY_INTERVAL = 2.0
"""Seconds between two samples: the dashboard polls as often, so each poll may bring one."""
HISTORY_SAMPLES = 1800
"""One hour of samples at HISTORY_INTERVAL (each a few hundred bytes per tier)."""


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """Seconds since the epoch (the process's clock) when the view was read."""
    view: QueueView


class History:
    """At most `length` samples, oldest first; the oldest drops out as a new one arrives."""

    def __init__(self, length: int = HISTORY_SAMPLES, interval: float = HISTORY_INTERVAL) -> None:
        self.interval = interval
        self._samples: deque[Sample] = deque(maxlen=length)

    def add(self, sample: Sample) -> None:
        self._samples.append(sample)

    def after(self, at: float | None) -> list[Sample]:
        """The samples taken after `at` (all with None), oldest first: a poll passes the time
        of the last sample it has, so it receives only what is new."""
        if at is None:
            return list(self._samples)
        newer: list[Sample] = []
        for sample in reversed(self._samples):
            if sample.at <= at:
                break
            newer.append(sample)
        newer.reverse()
        return newer


class HistorySampler:
    """Reads the service's queue view into a History every `history.interval` seconds. A
    reading that fails (the store is down) leaves a gap in the charts, nothing else.
    `stop()` is idempotent."""

    def __init__(self, service: OrderService, history: History, clock: Clock | None = None) -> None:
        self._service = service
        self._history = history
        self._clock = clock or SystemClock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="skipline-history")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        failing = False
        while True:
            try:
                view = await self._service.queue_view()
            except Exception as error:  # an outage is a gap in the charts, not a crash
                if not failing:
                    log.warning("the dashboard's history skips samples: %s", error)
                failing = True
            else:
                failing = False
                # Milliseconds, as served: a poll's `after` is a time it was given.
                self._history.add(Sample(round(self._clock.now(), 3), view))
            await asyncio.sleep(self._history.interval)
