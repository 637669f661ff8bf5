"""The dashboard's summary through a real socket: `/stats/queues` shows a blocked tier's
starvation (the oldest queued order's age, waits that include orders still waiting) where
`/stats` cannot; `/stats/history` serves what the sampler kept; `dashboard = "admin"` closes
the summary to every key but an admin's, and customers only ever reach an admin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web

from skipline.api import HISTORY
from skipline.config import Settings
from skipline.history import History, HistorySampler
from tests.integration.api_harness import STORE_KINDS, Api, assert_problem, running_api

SUMMARY = ("/stats", "/stats/queues", "/stats/history")


async def test_a_blocked_tier_shows_its_oldest_order_aging_and_its_waits(api: Api) -> None:
    for _ in range(3):
        assert (await api.submit({"payload": {"n": 1}})).status == 202
    await asyncio.sleep(0.3)

    first = (await api.call("GET", "/stats/queues")).json()
    await asyncio.sleep(1.2)  # past the statistics' cache (at most 1 s)
    later = (await api.call("GET", "/stats/queues")).json()
    started_only = (await api.call("GET", "/stats")).json()

    regular = first["tiers"]["regular"]
    assert regular["queued"] == 3 and regular["running"] == 0
    assert regular["oldest_queued_age"] >= 0.3
    assert regular["wait_p99"] == regular["oldest_queued_age"], "the waits include the queued"
    assert later["tiers"]["regular"]["oldest_queued_age"] >= regular["oldest_queued_age"] + 1
    assert started_only["tiers"]["regular"]["wait_p99"] is None, "nothing has started"
    vip = first["tiers"]["vip"]
    assert vip["queued"] == 0 and vip["oldest_queued_age"] is None
    assert list(first["tiers"]) == ["vip", "regular"], "best tier first"


async def test_customers_reach_only_an_admin_key(api: Api) -> None:
    admin = await api.service.add_key("root", "vip", admin=True)
    shop = await api.service.add_key("shop", "regular")
    assert (await api.submit({}, key=shop)).status == 202

    assert (await api.call("GET", "/stats/queues")).json()["customers"] is None
    as_shop = (await api.call("GET", "/stats/queues", key=shop)).json()
    as_admin = (await api.call("GET", "/stats/queues", key=admin)).json()

    assert as_shop["customers"] is None and as_shop["admin"] is False
    assert as_admin["admin"] is True
    assert [(c["key"], c["ready"]) for c in as_admin["customers"]] == [("shop", 1)]
    assert as_admin["kinds"]["default"]["queued"] == 1


async def test_queues_refuse_query_parameters_and_bad_keys(api: Api) -> None:
    assert_problem(await api.call("GET", "/stats/queues?x=1"), 422, "no query parameters")
    assert_problem(await api.call("GET", "/stats/queues", key="wrong"), 401)
    assert_problem(await api.call("GET", "/stats", headers={"Authorization": "Basic x"}), 401)


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_an_admin_dashboard_needs_an_admin_key(kind: str, tmp_path: Path) -> None:
    settings = Settings(db="memory://", dashboard="admin")
    async with running_api(kind, tmp_path, settings) as api:
        admin = await api.service.add_key("root", "vip", admin=True)
        shop = await api.service.add_key("shop", "regular")
        for path in SUMMARY:
            assert_problem(await api.call("GET", path), 401, "admin")
            assert_problem(await api.call("GET", path, key=shop), 403, "admin")
            assert (await api.call("GET", path, key=admin)).status == 200
        assert (await api.call("GET", "/")).status == 200, "the page itself asks for the key"


async def test_a_public_summary_needs_no_key_even_without_anonymous_orders(
    tmp_path: Path,
) -> None:
    settings = Settings(db="memory://", allow_anonymous=False)
    async with running_api("memory", tmp_path, settings) as api:
        for path in SUMMARY:
            assert (await api.call("GET", path)).status == 200
        assert_problem(await api.call("GET", "/orders"), 401)


async def test_the_history_serves_the_sampler_s_samples_after_a_time(tmp_path: Path) -> None:
    history = History(length=5, interval=0.05)

    def with_history(app: web.Application) -> None:
        app[HISTORY] = history

    async with running_api("memory", tmp_path, customise=with_history) as api:
        assert (await api.submit({})).status == 202
        sampler = HistorySampler(api.service, history)
        await sampler.start()
        try:
            await asyncio.sleep(0.5)
        finally:
            await sampler.stop()
            await sampler.stop()
        every = (await api.call("GET", "/stats/history")).json()
        middle = every["samples"][2]["at"]
        newer = (await api.call("GET", f"/stats/history?after={middle}")).json()
        for bad in ("after=-1", "after=nan", "after=x", "after=1&after=2", "since=1"):
            assert_problem(await api.call("GET", f"/stats/history?{bad}"), 422)

    assert every["interval"] == 0.05
    assert len(every["samples"]) == 5, "at most `length` samples are kept"
    times = [sample["at"] for sample in every["samples"]]
    assert times == sorted(times)
    assert every["samples"][-1]["tiers"]["regular"]["queued"] == 1
    assert [sample["at"] for sample in newer["samples"]] == times[3:]
