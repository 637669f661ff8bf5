"""The fixtures the API tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.api_harness import STORE_KINDS, Api, running_api


@pytest.fixture(params=STORE_KINDS)
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Api]:
    """A served API with default settings over each kind of store."""
    async with running_api(request.param, tmp_path) as running:
        yield running
