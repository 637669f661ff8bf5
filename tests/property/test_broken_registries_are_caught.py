"""The worker registry's contract tests must be able to fail: each mutant here breaks the
memory store's registry in one way, and at least one of tests/contract/test_worker_registry.py
(run against it as it runs against every store) must fail on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from skipline.domain.workers import WorkerProcess
from skipline.store.base import Store
from skipline.store.memory import MemoryStore
from tests.contract import test_worker_registry as contract

RegistryTest = Callable[[Store], Awaitable[None]]
STORE_TESTS: list[RegistryTest] = [
    test for name, test in vars(contract).items()
    if name.startswith("test_") and "store_factory" not in test.__code__.co_varnames
]


class ListsExpiredRows(MemoryStore):
    async def list_workers(self) -> list[WorkerProcess]:
        rows = [row for row, _ in self._workers.values()]
        return sorted(rows, key=lambda row: (row.started_at, row.id))


class BeatsRevivePools(MemoryStore):
    async def beat_worker(self, worker_id: str, slots_busy: int, expiry_seconds: float) -> bool:
        found = self._workers.get(worker_id)
        if found is None:
            return False
        now = self._clock.now()
        self._workers[worker_id] = (replace(found[0], slots_busy=slots_busy, last_heartbeat=now),
                                    now + expiry_seconds)
        return True


class PrunesEveryRow(MemoryStore):
    async def prune_workers(self) -> int:
        count = len(self._workers)
        self._workers.clear()
        return count


class BeatsIgnoreBusySlots(MemoryStore):
    async def beat_worker(self, worker_id: str, slots_busy: int, expiry_seconds: float) -> bool:
        return await super().beat_worker(worker_id, 0, expiry_seconds)


class SignInKeepsTheOldRow(MemoryStore):
    async def register_worker(self, worker: object, expiry_seconds: float) -> None:
        if getattr(worker, "id", None) not in self._workers:
            await super().register_worker(worker, expiry_seconds)  # type: ignore[arg-type]


class ListsNewestFirst(MemoryStore):
    async def list_workers(self) -> list[WorkerProcess]:
        return list(reversed(await super().list_workers()))


MUTANTS = [ListsExpiredRows, BeatsRevivePools, PrunesEveryRow, BeatsIgnoreBusySlots,
           SignInKeepsTheOldRow, ListsNewestFirst]


async def failures_against(mutant: type[MemoryStore]) -> list[str]:
    """The names of the store tests that fail on `mutant`, each on a store of its own (run
    together: most of the time is their sleeps past an expiry)."""

    async def fails(test: RegistryTest) -> bool:
        store = mutant()
        await store.open()
        try:
            await test(store)
        except AssertionError:
            return True
        finally:
            await store.close()
        return False

    outcomes = await asyncio.gather(*(fails(test) for test in STORE_TESTS))
    return [test.__name__ for test, failed in zip(STORE_TESTS, outcomes, strict=True) if failed]


def test_the_store_tests_are_found() -> None:
    assert len(STORE_TESTS) >= 6


async def test_each_broken_registry_is_caught_and_the_real_one_passes() -> None:
    """All at once (most of the time is sleeping past an expiry)."""
    kinds = [MemoryStore, *MUTANTS]
    failures = dict(zip(kinds, await asyncio.gather(*map(failures_against, kinds)), strict=True))

    assert failures.pop(MemoryStore) == []
    uncaught = [mutant.__name__ for mutant, failed in failures.items() if not failed]
    assert uncaught == [], "no contract test fails on these"
