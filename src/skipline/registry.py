"""The handler registry: which function runs each kind of order, and how (at most how many at
once in one process, its timeout, its attempts). A process's workers claim only the kinds
its registry names; its API refuses the others (422 naming the known ones).

    handlers = Handlers()

    @handlers.kind("ship", concurrency=4, timeout=30, max_attempts=5)
    async def ship(order: Order) -> JSON: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from skipline.domain.errors import ConfigError, HandlerNotFound
from skipline.domain.ids import is_kind_name
from skipline.domain.models import DEFAULT_KIND
from skipline.handlers import SPEC_HINT, Handler, load_handler, load_object

H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of order and what serves it; None means the process's own setting."""

    name: str
    handler: Handler
    concurrency: int | None = None
    """At most this many of the kind run at once in one process (its slots still bound it)."""
    timeout: float | None = None
    max_attempts: int | None = None


class Handlers:
    """A registry of kinds, filled by the `kind` decorator (or `add`)."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    @classmethod
    def single(cls, handler: Handler) -> Handlers:
        """One function for the kind `default` (what `--handler M:F` serves)."""
        handlers = cls()
        handlers.add(DEFAULT_KIND, handler)
        return handlers

    def kind(
        self, name: str, *, concurrency: int | None = None, timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> Callable[[H], H]:
        """Register the decorated async function as the handler of orders of kind `name`."""

        def register(handler: H) -> H:
            self.add(name, handler, concurrency=concurrency, timeout=timeout,
                     max_attempts=max_attempts)
            return handler

        return register

    def add(
        self, name: str, handler: Handler, *, concurrency: int | None = None,
        timeout: float | None = None, max_attempts: int | None = None,
    ) -> None:
        """As `kind`, without the decorator. ConfigError for a bad or repeated kind."""
        check_kind(name, handler, concurrency, timeout, max_attempts)
        if name in self._kinds:
            raise ConfigError(f"kind {name!r} has a handler already")
        self._kinds[name] = Kind(name, handler, concurrency, timeout, max_attempts)

    @property
    def names(self) -> list[str]:
        """The kinds served, sorted."""
        return sorted(self._kinds)

    def get(self, name: str) -> Kind | None:
        return self._kinds.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)


def is_async_callable(handler: object) -> bool:
    """An async function, or an object whose `__call__` is one."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None))  # noqa: B004 - the method itself is what counts


def check_kind(
    name: str, handler: Handler, concurrency: int | None, timeout: float | None,
    max_attempts: int | None,
) -> None:
    """ConfigError naming what is wrong with one registration."""
    if not isinstance(name, str) or not is_kind_name(name):
        raise ConfigError(
            f"kind {name!r} is not a valid name: 1 to 64 of a-z 0-9 _ . - (starting with a "
            "letter or digit)")
    if not is_async_callable(handler):
        raise ConfigError(f"the handler of kind {name!r} is not an async function")
    for what, value in (("concurrency", concurrency), ("max_attempts", max_attempts)):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise ConfigError(f"kind {name!r}: {what} must be at least 1")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"kind {name!r}: timeout must be more than 0 seconds")


def load_handlers(spec: str) -> Handlers:
    """The registry named by `spec` ('package.module:attribute'). Raises HandlerNotFound."""
    found = load_object(spec, "handlers")
    if not isinstance(found, Handlers):
        raise HandlerNotFound(
            f"handlers {spec!r} is a {type(found).__name__}, not a skipline.Handlers registry")
    if not found:
        raise HandlerNotFound(f"handlers {spec!r} has no kinds: register one with @kind(...)")
    return found


def registry_for(handler: str, handlers: str | None) -> Handlers:
    """What a process serves: the registry `handlers` names, else `handler` ('simulate' or
    'M:F') for the kind `default`. Giving both (a `handler` other than the default) is a
    ConfigError."""
    if handlers is None:
        return Handlers.single(load_handler(handler))
    if handler != "simulate":
        raise ConfigError(f"give --handler or --handlers, not both ({SPEC_HINT})")
    return load_handlers(handlers)
