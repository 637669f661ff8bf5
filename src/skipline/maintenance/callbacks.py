"""The CallbackSender delivers the outcomes of orders that asked for a callback: it claims the
pending deliveries that are due from the store, POSTs each order's JSON to its URL, signed
(`Skipline-Signature`, skipline.signing), and records the attempt. A 2xx answer is delivery;
anything else, a redirect (never followed) or no answer within the timeout is retried with
exponential backoff until 24 hours after the order finished, then given up. A URL that no
longer matches the allow list is never contacted. At least once: a delivery is recorded only
after its answer, so a crash in between sends it again after a restart."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from skipline.api.schemas import ENCODER, order_out
from skipline.clock import Clock, SystemClock
from skipline.config import CallbackSettings
from skipline.domain.models import Delivery
from skipline.metrics import Metrics
from skipline.retrying import Periodic
from skipline.signing import SIGNATURE_HEADER, signature_header
from skipline.store.base import Store

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5
"""Seconds between two looks for due deliveries when the last look found none."""
BATCH = 50
"""Deliveries claimed, and sent concurrently, at once."""
CLAIM_MARGIN = 5.0
"""A claimed delivery is put off by its timeout plus this, so no other sender takes it while
it is being tried."""


class CallbackSender:
    """One per process that runs workers (several share a PostgreSQL database). Start/stop."""

    def __init__(
        self, store: Store, callbacks: CallbackSettings, metrics: Metrics | None = None,
        clock: Clock | None = None, interval: float = POLL_INTERVAL,
    ) -> None:
        self.store = store
        self.callbacks = callbacks
        self.metrics = metrics
        self._clock = clock or SystemClock()
        self._session: aiohttp.ClientSession | None = None
        self._loop = Periodic(self.send_due, interval=interval, doing="delivering callbacks",
                              logger=log, name="skipline-callbacks")

    async def start(self) -> None:
        """Idempotent. The HTTP session is made here, on the running loop."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.callbacks.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        self._loop.start(first_delay=0.0)

    async def stop(self) -> None:
        """Idempotent. A delivery cut short stays pending and is sent again later."""
        await self._loop.stop()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send_due(self) -> int:
        """Deliver what is due, batch after batch; how many attempts were made."""
        attempts = 0
        lease = self.callbacks.timeout + CLAIM_MARGIN
        while due := await self.store.claim_deliveries(BATCH, lease):
            await asyncio.gather(*(self.deliver(delivery) for delivery in due))
            attempts += len(due)
        return attempts

    async def deliver(self, delivery: Delivery) -> None:
        """One attempt, recorded: delivered, to be retried, or given up."""
        error = await self._attempt(delivery)
        retry_delay = None if error is None else self.retry_delay(delivery)
        await self.store.record_delivery(delivery.order_id, error, retry_delay)
        outcome = "delivered" if error is None else "failed" if retry_delay else "given_up"
        if error is not None:
            log.warning("callback for order %s to %s: %s (%s)", delivery.order_id,
                        delivery.url, error, "retried later" if retry_delay else "given up")
        if self.metrics is not None:
            self.metrics.callback_attempted(outcome)

    def retry_delay(self, delivery: Delivery) -> float | None:
        """Exponential backoff from `backoff_base`, at most `backoff_max`; None once the next
        attempt would come later than `give_up_after` past the order's finish."""
        callbacks = self.callbacks
        delay = min(callbacks.backoff_max, callbacks.backoff_base * 2.0 ** delivery.attempts)
        if self._clock.now() + delay > delivery.created_at + callbacks.give_up_after:
            return None
        return delay

    async def _attempt(self, delivery: Delivery) -> str | None:
        """None when delivered; else why not."""
        if not self.callbacks.allows(delivery.url):
            return "the URL no longer matches the [callbacks] allow list; not sent"
        order = await self.store.get(delivery.order_id)
        if order is None:
            return "the order no longer exists"
        pending = Delivery(delivery.order_id, delivery.url, "pending", delivery.attempts + 1,
                           delivery.last_error, delivery.created_at, delivery.next_at)
        body = ENCODER.encode(order_out(order, pending))
        return await self._post(delivery.url, body, order.id, delivery.attempts + 1)

    async def _post(self, url: str, body: bytes, order_id: str, attempt: int) -> str | None:
        session = self._session
        if session is None:
            return "the callback sender is stopped"
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(self.callbacks.secret, body, int(time.time())),
            "Skipline-Order-Id": order_id,
            "Skipline-Attempt": str(attempt),
        }
        try:
            async with session.post(url, data=body, headers=headers,
                                    allow_redirects=False) as response:
                if 200 <= response.status < 300:
                    return None
                if 300 <= response.status < 400:
                    return f"HTTP {response.status} (redirects are not followed)"
                return f"HTTP {response.status}"
        except TimeoutError:
            return f"no answer within {self.callbacks.timeout:g} s"
        except aiohttp.ClientError as error:
            return f"{type(error).__name__}: {error}"[:500]
