"""Fixtures: a launcher of real skipline processes (always killed at teardown) and an HTTP
client session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.acceptance.processes import Launcher, PostgresLauncher


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    starter = Launcher(tmp_path)
    try:
        yield starter
    finally:
        starter.stop_all()


@pytest.fixture
def postgres_launcher(tmp_path: Path, postgres_url: str) -> Iterator[PostgresLauncher]:
    """Processes on the test's own PostgreSQL database; killed at teardown."""
    starter = PostgresLauncher(tmp_path, postgres_url)
    try:
        yield starter
    finally:
        starter.stop_all()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session
