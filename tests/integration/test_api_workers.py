"""`GET /workers` through a real socket over real stores and real worker pools: admin keys
only (401 without a key, 403 with another key), the exact JSON the dashboard renders, busy
slots carried by the pools' heartbeats, a drained pool gone at once, a silent one gone one
lease after its last beat and deleted by the lease reaper."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import datetime
from pathlib import Path

import pytest

from skipline.config import Settings
from skipline.domain.models import JSON, Order
from skipline.domain.workers import WorkerSignIn
from skipline.maintenance import LeaseReaper
from skipline.runtime import Workers
from tests.integration.api_harness import STORE_KINDS, Api, assert_problem, running_api

WORKER_FIELDS = {"id", "host", "pid", "kinds", "slots_busy", "slots_total", "started_at",
                 "last_heartbeat"}


async def listed(api: Api, key: str) -> list[dict[str, object]]:
    reply = await api.call("GET", "/workers", key=key)
    assert reply.status == 200, reply.body
    assert reply.content_type.startswith("application/json")
    body = reply.json()
    assert set(body) == {"workers"}
    workers: list[dict[str, object]] = body["workers"]
    return workers


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_only_an_admin_key_sees_the_workers(kind: str, tmp_path: Path) -> None:
    async with running_api(kind, tmp_path) as api:
        alice = await api.service.add_key("alice", "vip")
        root = await api.service.add_key("root", "regular", admin=True)

        assert_problem(await api.call("GET", "/workers"), 401, "admin")
        assert_problem(await api.call("GET", "/workers", key=alice), 403, "admin", "alice")
        assert_problem(await api.call("GET", "/workers", key="not-a-key"), 401)
        assert await listed(api, root) == []


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_a_running_pool_is_listed_with_its_busy_slots(kind: str, tmp_path: Path) -> None:
    settings = Settings(db="memory://", workers=3, lease_seconds=0.6)
    release = asyncio.Event()

    async def held(order: Order) -> JSON:
        await release.wait()
        return None

    async with running_api(kind, tmp_path, settings) as api:
        root = await api.service.add_key("root", "regular", admin=True)
        workers = Workers(api.service.store, settings, held, worker_id="pool-a")
        await workers.start()
        try:
            started = await until_busy(api, root, 0)
            for _ in range(2):
                assert (await api.submit({})).status == 202
            busy = await until_busy(api, root, 2)
        finally:
            release.set()
            await workers.stop()
        assert await listed(api, root) == [], "a drained pool signs out"

    assert set(started) == WORKER_FIELDS
    assert (started["id"], started["host"], started["pid"]) == (
        "pool-a", socket.gethostname(), os.getpid())
    assert (started["kinds"], started["slots_total"]) == (["default"], 3)
    assert started["started_at"] == busy["started_at"]
    assert rfc3339(busy["last_heartbeat"]) > rfc3339(started["last_heartbeat"])


async def until_busy(api: Api, key: str, slots: int) -> dict[str, object]:
    """The one pool's entry once it signed in (0 busy) or a heartbeat reported `slots` busy
    (a beat is every third of a lease: 0.2 s here)."""
    seen: list[dict[str, object]] = []
    for _ in range(50):
        seen = await listed(api, key)
        if len(seen) == 1 and seen[0]["slots_busy"] == slots:
            return seen[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"the registry never showed one pool with {slots} busy slots: {seen}")


def rfc3339(text: object) -> datetime:
    assert isinstance(text, str) and text.endswith("Z"), text
    return datetime.fromisoformat(text)


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_a_pool_that_stops_beating_expires_and_is_reaped(kind: str, tmp_path: Path) -> None:
    settings = Settings(db="memory://", workers=1, lease_seconds=0.3)
    async with running_api(kind, tmp_path, settings) as api:
        root = await api.service.add_key("root", "regular", admin=True)
        store = api.service.store
        await store.register_worker(WorkerSignIn("frozen", "h", 7, ("default",), 1), 0.3)
        assert [worker["id"] for worker in await listed(api, root)] == ["frozen"]

        await asyncio.sleep(0.5)

        assert await listed(api, root) == []
        await LeaseReaper(store, settings).reap_once()
        assert await store.remove_worker("frozen") is False, "the reaper deleted the row"
