"""What the dashboard, /stats and admission control read: counts per tier and status, recent
waits, throughput, queued counts; and the reachability check."""

from __future__ import annotations

from skipline.domain.models import Status, TierCounts
from skipline.store.base import Store
from skipline.testing import make_new_order, submit_all
from tests.contract.helpers import LEASE


async def seed_every_status(store: Store) -> None:
    """vip: one succeeded, one failed. regular: one queued, one running, one cancelled,
    one waiting for a retry (queued)."""
    await submit_all(store, [make_new_order("vip"), make_new_order("vip")], chunk=1)
    regular = await submit_all(store, [make_new_order() for _ in range(4)], chunk=1)
    succeeded, failed, running, retried = await store.claim("w", 4, LEASE)
    assert await store.complete(succeeded.order.id, succeeded.token, None)
    assert await store.fail(failed.order.id, failed.token, "no", None) is Status.FAILED
    assert await store.fail(retried.order.id, retried.token, "again", 60.0) is Status.QUEUED
    assert running.order.id == regular[0].id
    await store.cancel(regular[2].id)


def without_zeros(counts: dict[str, int]) -> dict[str, int]:
    return {tier: count for tier, count in counts.items() if count}


async def test_stats_count_every_tier_and_status(store: Store) -> None:
    await seed_every_status(store)

    stats = await store.stats()

    assert stats.counts.get("vip", TierCounts()) == TierCounts(succeeded=1, failed=1)
    assert stats.counts.get("regular", TierCounts()) == TierCounts(
        queued=2, running=1, cancelled=1,
    )
    assert set(stats.counts) <= {"vip", "regular"}


async def test_stats_report_recent_waits_and_throughput(store: Store) -> None:
    await seed_every_status(store)

    stats = await store.stats()

    assert len(stats.recent_waits.get("vip", [])) == 2
    assert 1 <= len(stats.recent_waits.get("regular", [])) <= 2
    waits = [wait for tier in stats.recent_waits.values() for wait in tier]
    assert all(0 <= wait < 60 for wait in waits)
    assert stats.finished_last_minute in (2, 3), "succeeded + failed (+ cancelled)"


async def test_stats_of_an_empty_store(store: Store) -> None:
    stats = await store.stats()

    assert all(counts == TierCounts() for counts in stats.counts.values())
    assert all(not waits for waits in stats.recent_waits.values())
    assert stats.finished_last_minute == 0


async def test_queued_counts_follow_submissions_and_claims(store: Store) -> None:
    assert without_zeros(await store.queued_counts()) == {}
    await seed_every_status(store)

    assert without_zeros(await store.queued_counts()) == {"regular": 2}

    await submit_all(store, [make_new_order("vip") for _ in range(3)])
    await store.claim("w", 1, LEASE)
    assert without_zeros(await store.queued_counts()) == {"vip": 2, "regular": 2}


async def test_an_open_store_answers_ping(store: Store) -> None:
    await store.ping()
