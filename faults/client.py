"""The recording client: submits orders over real HTTP and writes each outcome to the history.

It tells apart the three things a client can know: acknowledged (2xx with an id), refused (an
error status, or a connection that never opened, so nothing was sent) and unknown (the request
was sent, or may have been, and no answer came back; or the server answered that it does not
know either: a 503 whose problem says `"outcome": "unknown"` and names the order).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from faults.history import Answer, History, Post

REQUEST_TIMEOUT = 5.0
"""Seconds after which an unanswered POST is recorded as unknown."""


@dataclass(frozen=True, slots=True)
class OrderShape:
    """What the load generator submits: a duration range and extra payload fields."""

    min_duration: float = 0.0
    max_duration: float = 0.2
    payload: dict[str, Any] = field(default_factory=dict)
    expect: str = "succeeded"
    callback_url: str | None = None
    """Where every order asks its outcome to be POSTed."""
    api_key: str | None = None
    """Submit with this key (its tier: a VIP client); anonymous without."""

    def duration(self, rng: random.Random) -> float:
        return round(rng.uniform(self.min_duration, self.max_duration), 3)


class Recorder:
    """Submits orders to one or more servers (round robin) and records every outcome."""

    def __init__(
        self, history: History, base_urls: Sequence[str], timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self.history = history
        self._urls = itertools.cycle(list(base_urls))
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Recorder:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def submit(self, shape: OrderShape, rng: random.Random) -> Post:
        """POST one order with a fresh Idempotency-Key; record and return what we were told."""
        key = str(uuid.uuid4())
        body: dict[str, Any] = {"payload": {"key": key, **shape.payload},
                                "duration": shape.duration(rng)}
        if shape.callback_url is not None:
            body["callback_url"] = shape.callback_url
        sent_at = time.time()
        outcome, status, order_id, detail = await self._post(key, body, api_key=shape.api_key)
        submission = Post(
            key, sent_at, time.time(), outcome, status, order_id, shape.expect, detail, body,
            shape.api_key,
        )
        self.history.record(submission)
        return submission

    async def repost(
        self, key: str, body: dict[str, Any], base_url: str | None = None,
        api_key: str | None = None,
    ) -> tuple[int | None, str | None]:
        """Send the same request again, key, body and API key, as a client resolving an
        unknown would (the same key with another body is a different request: 422)."""
        _, status, order_id, _ = await self._post(key, body, base_url, api_key)
        return status, order_id

    async def _post(
        self, key: str, body: dict[str, Any], base_url: str | None = None,
        api_key: str | None = None,
    ) -> tuple[Answer, int | None, str | None, str]:
        assert self._session is not None, "use the Recorder as an async context manager"
        url = (base_url or next(self._urls)) + "/orders"
        headers = {"Idempotency-Key": key}
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        try:
            async with self._session.post(url, json=body, headers=headers) as r:
                if r.status < 300:
                    data = await r.json(content_type=None)
                    if isinstance(data, dict) and "id" in data:
                        return Answer.ACKNOWLEDGED, r.status, str(data["id"]), ""
                text = await r.text()
                order_id = unknown_order(r.status, text)
                if order_id is not None:
                    return Answer.UNKNOWN, r.status, order_id, text[:200]
                return Answer.REFUSED, r.status, None, text[:200]
        except aiohttp.ClientConnectorError as exc:
            # The TCP connection never opened: nothing was sent, so nothing can be stored.
            return Answer.REFUSED, None, None, f"connect: {exc.os_error}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # Sent, or maybe sent, and no usable answer (ValueError: a 2xx body that is not
            # JSON): the order may or may not exist.
            return Answer.UNKNOWN, None, None, type(exc).__name__


def unknown_order(status: int, body: str) -> str | None:
    """The order id of a 503 whose problem says the outcome is unknown (the order may or may
    not have been stored); None for any other answer, which is a refusal."""
    if status != 503:
        return None
    try:
        problem = json.loads(body)
    except ValueError:
        return None
    if not isinstance(problem, dict) or problem.get("outcome") != "unknown":
        return None
    order_id = problem.get("order_id")
    return order_id if isinstance(order_id, str) and order_id else None


async def load(
    recorder: Recorder, stop: asyncio.Event, clients: int, shape: OrderShape,
    pause: float = 0.05, seed: int = 0,
) -> None:
    """`clients` closed-loop clients submitting until `stop` is set. Each waits `pause` between
    submissions (longer after a refusal, so a dead server is not hammered)."""

    async def one_client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        while not stop.is_set():
            submission = await recorder.submit(shape, rng)
            delay = pause if submission.outcome is Answer.ACKNOWLEDGED else max(pause, 0.1)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    await asyncio.gather(*(one_client(i) for i in range(clients)))


async def submit_batch(
    recorder: Recorder, count: int, shape: OrderShape, seed: int = 0
) -> list[Post]:
    """Submit `count` orders of one shape concurrently (for poison and slow-handler scenarios)."""
    rng = random.Random(seed)
    return list(await asyncio.gather(*(recorder.submit(shape, rng) for _ in range(count))))
