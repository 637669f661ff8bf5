"""The 'work may be ready' signal every store gives its idle workers (wait_for_work)."""

from __future__ import annotations

import asyncio
import contextlib


class WakeUp:
    """Set by whatever may make an order ready; an idle worker waits on it with a time bound.
    Create it on the running loop (in a store's open())."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, *_: object) -> None:
        self._event.set()

    async def wait(self, max_seconds: float) -> None:
        """Return once notified (the signal is then consumed) or after `max_seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), max(0.0, max_seconds))
        self._event.clear()


async def wait_on(wake: WakeUp | None, max_seconds: float) -> None:
    """Wait on `wake`, or just sleep when the store is not open (nothing can notify)."""
    if wake is None:
        await asyncio.sleep(max_seconds)
    else:
        await wake.wait(max_seconds)
