"""Webhooks end to end in one process, with a real loopback receiver: the signed POST, retries
with backoff (500, 500, then 200: three attempts), the allow list at submission and again at
delivery, redirects never followed, and what the order and /metrics show."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from skipline.api import METRICS
from skipline.config import CallbackSettings, Settings
from skipline.domain.models import Order
from skipline.maintenance import CallbackSender
from skipline.metrics import Metrics
from skipline.runtime import Workers
from skipline.signing import verify
from tests.callback_receiver import Receiver, receiving
from tests.integration.api_harness import STORE_KINDS, Api, assert_problem, running_api

SECRET = "s3cret-for-tests"


async def succeed(order: Order) -> dict[str, Any]:
    return {"done": order.payload}


def callback_settings(receiver: Receiver, **overrides: Any) -> CallbackSettings:
    values: dict[str, Any] = {"timeout": 2.0, "backoff_base": 0.1, "backoff_max": 0.2}
    values.update(overrides)
    return CallbackSettings((receiver.url + "/",), SECRET, **values)


@asynccontextmanager
async def serving_with_callbacks(
    kind: str, folder: Path, receiver: Receiver, **overrides: Any
) -> AsyncIterator[Api]:
    settings = Settings(db="memory://", workers=2,
                        callbacks=callback_settings(receiver, **overrides))
    metrics = Metrics()

    def share_metrics(app: web.Application) -> None:
        app[METRICS] = metrics

    async with running_api(kind, folder, settings, share_metrics) as api:
        workers = Workers(api.service.store, settings, succeed, metrics=metrics)
        await workers.start()
        try:
            yield api
        finally:
            await workers.stop()


async def delivered(api: Api, order_id: str, within: float = 10.0) -> dict[str, Any]:
    """The order once its callback is no longer pending."""
    async with asyncio.timeout(within):
        while True:
            order: dict[str, Any] = (await api.call("GET", f"/orders/{order_id}")).json()
            if order["callback"]["status"] not in ("waiting", "pending"):
                return order
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_the_outcome_is_posted_signed_and_the_order_shows_it(
    kind: str, tmp_path: Path
) -> None:
    async with receiving() as receiver, serving_with_callbacks(kind, tmp_path, receiver) as api:
        submitted = await api.submit({"payload": {"sku": 7},
                                      "callback_url": receiver.url + "/hook"})
        assert submitted.status == 202
        assert submitted.json()["callback"] == {
            "url": receiver.url + "/hook", "status": "waiting", "attempts": 0,
            "last_error": None}
        order = await delivered(api, submitted.json()["id"])

    assert order["callback"]["status"] == "delivered" and order["callback"]["attempts"] == 1
    [request] = receiver.at("/hook")
    assert verify(SECRET, request.body, request.headers["Skipline-Signature"])
    assert not verify("another secret", request.body, request.headers["Skipline-Signature"])
    sent = json.loads(request.body)
    assert (sent["id"], sent["status"], sent["result"]) == (order["id"], "succeeded",
                                                            {"done": {"sku": 7}})
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_500_twice_then_200_is_three_attempts(kind: str, tmp_path: Path) -> None:
    async with (
        receiving([500, 500, 200]) as receiver,
        serving_with_callbacks(kind, tmp_path, receiver) as api,
    ):
        submitted = await api.submit({"callback_url": receiver.url + "/hook"})
        order = await delivered(api, submitted.json()["id"])
        metrics = (await api.call("GET", "/metrics")).body.decode()

    assert len(receiver.at("/hook")) == 3
    assert (order["callback"]["status"], order["callback"]["attempts"]) == ("delivered", 3)
    assert 'skipline_callback_deliveries_total{outcome="failed"} 2.0' in metrics
    assert 'skipline_callback_deliveries_total{outcome="delivered"} 1.0' in metrics


async def test_a_receiver_that_never_answers_2xx_is_given_up(tmp_path: Path) -> None:
    async with (
        receiving([503]) as receiver,
        serving_with_callbacks("memory", tmp_path, receiver, give_up_after=2.0) as api,
    ):
        submitted = await api.submit({"callback_url": receiver.url + "/hook"})
        order = await delivered(api, submitted.json()["id"])

    assert order["callback"]["status"] == "failed"
    assert order["callback"]["last_error"] == "HTTP 503"
    assert 2 <= order["callback"]["attempts"] == len(receiver.at("/hook"))


async def test_a_redirect_is_not_followed(tmp_path: Path) -> None:
    async with (
        receiving() as receiver,
        serving_with_callbacks("memory", tmp_path, receiver, give_up_after=1.0) as api,
    ):
        submitted = await api.submit({"callback_url": receiver.url + "/moved"})
        order = await delivered(api, submitted.json()["id"])

    assert receiver.at("/moved") and not receiver.at("/hook")
    assert order["callback"]["status"] == "failed"
    assert "302" in order["callback"]["last_error"]
    assert "not followed" in order["callback"]["last_error"]


async def test_urls_outside_the_allow_list_or_with_callbacks_off_are_422(
    tmp_path: Path,
) -> None:
    async with receiving() as receiver:
        async with serving_with_callbacks("memory", tmp_path, receiver) as api:
            for url in ("https://elsewhere.example/hook", receiver.url + ".evil.example/",
                        "http://user@" + receiver.url[len("http://"):] + "/hook", "not a url"):
                assert_problem(await api.submit({"callback_url": url}), 422, "callback_url")
        async with running_api("memory", tmp_path) as plain:
            off = await plain.submit({"callback_url": receiver.url + "/hook"})
            assert_problem(off, 422, "callbacks are off")
    assert receiver.received == []


async def test_the_allow_list_is_checked_again_at_delivery(tmp_path: Path) -> None:
    async with (
        receiving() as receiver,
        running_api("memory", tmp_path, Settings(
            db="memory://", callbacks=callback_settings(receiver))) as api,
    ):
        submitted = (await api.submit({"callback_url": receiver.url + "/hook"})).json()
        await api.call("DELETE", f"/orders/{submitted['id']}")
        narrowed = CallbackSettings(("https://only.example/",), SECRET, backoff_base=0.1)
        sender = CallbackSender(api.service.store, narrowed)
        await sender.start()
        try:
            await sender.send_due()
        finally:
            await sender.stop()
        order = (await api.call("GET", f"/orders/{submitted['id']}")).json()

    assert receiver.received == []
    assert "allow list" in order["callback"]["last_error"]
