"""The handler registry: typed registration by decorator, names checked, duplicates and bad
settings refused, and loading from 'module:attribute' the way --handlers does."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skipline import Handlers
from skipline.domain.errors import ConfigError, HandlerNotFound
from skipline.domain.models import JSON, Order
from skipline.handlers import simulate
from skipline.registry import load_handlers, registry_for


async def ship(order: Order) -> JSON:
    return None


def test_the_decorator_registers_and_returns_the_function() -> None:
    handlers = Handlers()
    decorated = handlers.kind("ship", concurrency=4, timeout=30, max_attempts=5)(ship)
    assert decorated is ship
    kind = handlers.get("ship")
    assert kind is not None
    assert (kind.handler, kind.concurrency, kind.timeout, kind.max_attempts) == (ship, 4, 30, 5)
    assert handlers.names == ["ship"] and "ship" in handlers and len(handlers) == 1


def test_names_are_sorted_and_the_single_registry_serves_default() -> None:
    handlers = Handlers()
    handlers.add("receipt", ship)
    handlers.add("a.b-c_1", ship)
    assert handlers.names == ["a.b-c_1", "receipt"]
    assert Handlers.single(simulate).names == ["default"]


@pytest.mark.parametrize(("name", "options", "words"), [
    ("Ship", {}, "not a valid name"),
    ("", {}, "not a valid name"),
    ("x" * 65, {}, "not a valid name"),
    ("ship", {"concurrency": 0}, "concurrency"),
    ("ship", {"max_attempts": 0}, "max_attempts"),
    ("ship", {"timeout": 0}, "timeout"),
])
def test_bad_registrations_are_refused(name: str, options: dict[str, float], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        Handlers().add(name, ship, **options)  # type: ignore[arg-type]


def test_a_kind_registered_twice_or_a_sync_function_is_refused() -> None:
    handlers = Handlers()
    handlers.add("ship", ship)
    with pytest.raises(ConfigError, match="already"):
        handlers.add("ship", ship)
    with pytest.raises(ConfigError, match="not an async function"):
        handlers.add("mail", lambda order: None)  # type: ignore[arg-type,return-value]


@pytest.fixture
def module_dir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("kinds_test_")]:
        del sys.modules[name]


def test_handlers_load_from_module_attribute(module_dir: Path) -> None:
    (module_dir / "kinds_test_tasks.py").write_text(
        "from skipline import Handlers\n"
        "handlers = Handlers()\n"
        "@handlers.kind('ship', concurrency=2)\n"
        "async def ship(order):\n    return None\n"
        "empty = Handlers()\n"
        "not_a_registry = 3\n"
    )
    assert load_handlers("kinds_test_tasks:handlers").names == ["ship"]
    with pytest.raises(HandlerNotFound, match=r"not a skipline\.Handlers"):
        load_handlers("kinds_test_tasks:not_a_registry")
    with pytest.raises(HandlerNotFound, match="no kinds"):
        load_handlers("kinds_test_tasks:empty")
    with pytest.raises(HandlerNotFound, match="not a valid name"):
        load_handlers("kinds_test_tasks")


def test_registry_for_takes_handlers_or_one_handler_not_both(module_dir: Path) -> None:
    (module_dir / "kinds_test_both.py").write_text(
        "from skipline import Handlers\nhandlers = Handlers()\n"
        "@handlers.kind('ship')\nasync def ship(order):\n    return None\n"
    )
    assert registry_for("simulate", None).names == ["default"]
    assert registry_for("simulate", "kinds_test_both:handlers").names == ["ship"]
    assert registry_for("kinds_test_both:ship", None).names == ["default"]
    with pytest.raises(ConfigError, match="not both"):
        registry_for("kinds_test_both:ship", "kinds_test_both:handlers")


def test_an_object_with_an_async_call_is_a_handler() -> None:
    class Counting:
        def __init__(self) -> None:
            self.calls = 0

        async def __call__(self, order: Order) -> JSON:
            self.calls += 1
            return None

    assert Handlers.single(Counting()).names == ["default"]
