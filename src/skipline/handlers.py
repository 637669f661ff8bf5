"""Handlers do the actual work on an order. A handler is an async function of the Order that
returns a JSON-serialisable result; `order.id` is its idempotency key for side effects, since
an order may run more than once (at least once, invariant 4)."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from skipline.domain.errors import HandlerNotFound
from skipline.domain.models import JSON, MAX_DURATION, Order

Handler = Callable[[Order], Awaitable[JSON]]

SPEC_HINT = "use 'simulate' or 'package.module:function'"


async def simulate(order: Order) -> JSON:
    """The tutorial's processing: sleep for the order's `duration` seconds."""
    duration = order.duration
    if not 0 <= duration <= MAX_DURATION:
        raise ValueError(f"duration must be between 0 and {MAX_DURATION:g} seconds, got {duration}")
    await asyncio.sleep(duration)
    return {"slept": duration}


def load_handler(spec: str) -> Handler:
    """The handler named by `spec`: 'simulate' or 'package.module:function' (the function
    may be a dotted path inside the module). Raises HandlerNotFound saying what is wrong."""
    if spec == "simulate":
        return simulate
    target = load_object(spec, "handler")
    if not inspect.iscoroutinefunction(target):
        raise HandlerNotFound(
            f"handler {spec!r} is not an async function (define it with 'async def')"
        )
    handler: Handler = target
    return handler


def load_object(spec: str, what: str) -> Any:
    """The object 'package.module:attribute' names (the attribute may be a dotted path inside
    the module); `what` names it in the errors. Raises HandlerNotFound."""
    module_name, separator, attribute = spec.partition(":")
    if not separator or not module_name.strip() or not attribute.strip():
        raise HandlerNotFound(f"{what} {spec!r} is not a valid name: {SPEC_HINT}")
    return _resolve(_import(module_name.strip()), attribute.strip(), spec)


def _import(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            part = "" if missing == module_name else f" (no module named {missing!r})"
            raise HandlerNotFound(
                f"handler module {module_name!r} was not found{part}; is it installed or on "
                "PYTHONPATH?"
            ) from exc
        raise HandlerNotFound(
            f"importing handler module {module_name!r} failed: it needs module {missing!r}, "
            "which is not installed"
        ) from exc
    except Exception as exc:
        raise HandlerNotFound(
            f"importing handler module {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _resolve(module: ModuleType, attribute: str, spec: str) -> Any:
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise HandlerNotFound(
                f"handler {spec!r}: module {module.__name__!r} has no attribute {attribute!r}"
            ) from exc
    return target
