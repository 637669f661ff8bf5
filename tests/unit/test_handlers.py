"""Handlers: the built-in `simulate`, and `load_handler` finding user handlers by name with
errors that say exactly what is wrong."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from skipline.domain.errors import HandlerNotFound
from skipline.domain.models import Order, Status
from skipline.handlers import load_handler, simulate


def an_order(duration: float = 0.0) -> Order:
    return Order(
        id="order-1", seq=1, tier="regular", priority=1, status=Status.RUNNING, attempts=1,
        rescues=0, payload={"x": 1}, duration=duration, owner="", created_at=0.0,
    )


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module of handlers, good and bad, under a name unique to this test."""
    name = f"user_handlers_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        "import asyncio\n"
        "async def handle(order):\n"
        "    return {'seen': order.id}\n"
        "def not_async(order):\n"
        "    return None\n"
        "class Holder:\n"
        "    @staticmethod\n"
        "    async def nested(order):\n"
        "        return 'nested'\n"
        "VALUE = 3\n",
        encoding="utf-8",
    )
    (tmp_path / f"{name}_broken.py").write_text("raise RuntimeError('bad config')\n")
    (tmp_path / f"{name}_needs.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


async def test_simulate_sleeps_the_orders_duration() -> None:
    began = time.monotonic()
    result = await simulate(an_order(0.1))
    assert time.monotonic() - began >= 0.09
    assert result == {"slept": 0.1}


async def test_simulate_refuses_a_duration_out_of_range() -> None:
    with pytest.raises(ValueError, match="duration"):
        await simulate(an_order(-1.0))
    with pytest.raises(ValueError, match="duration"):
        await simulate(an_order(3601.0))


def test_simulate_is_loaded_by_name() -> None:
    assert load_handler("simulate") is simulate


async def test_a_user_handler_is_loaded_and_called(user_module: str) -> None:
    handler = load_handler(f"{user_module}:handle")
    assert await handler(an_order()) == {"seen": "order-1"}
    nested = load_handler(f"{user_module}:Holder.nested")
    assert await nested(an_order()) == "nested"


@pytest.mark.parametrize("spec", ["", "nocolon", ":handle", "module:", "  :  "])
def test_a_malformed_name_is_refused(spec: str) -> None:
    with pytest.raises(HandlerNotFound, match=re.escape("package.module:function")):
        load_handler(spec)


def test_a_missing_module_is_named() -> None:
    with pytest.raises(HandlerNotFound, match="'no_such_module_xyz' was not found; is it"):
        load_handler("no_such_module_xyz:handle")
    with pytest.raises(HandlerNotFound, match="no module named 'no_such_module_xyz'"):
        load_handler("no_such_module_xyz.sub:handle")


def test_a_missing_dependency_of_the_module_is_named(user_module: str) -> None:
    with pytest.raises(HandlerNotFound, match="needs module 'no_such_dependency_xyz'"):
        load_handler(f"{user_module}_needs:handle")


def test_a_module_that_fails_to_import_says_why(user_module: str) -> None:
    with pytest.raises(HandlerNotFound, match="RuntimeError: bad config"):
        load_handler(f"{user_module}_broken:handle")


def test_a_missing_attribute_is_named(user_module: str) -> None:
    with pytest.raises(HandlerNotFound, match="has no attribute 'missing'"):
        load_handler(f"{user_module}:missing")


@pytest.mark.parametrize("attribute", ["not_async", "VALUE", "Holder"])
def test_a_target_that_is_not_an_async_function_is_refused(
    user_module: str, attribute: str
) -> None:
    with pytest.raises(HandlerNotFound, match="not an async function"):
        load_handler(f"{user_module}:{attribute}")
