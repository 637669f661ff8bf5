"""`skipline bench` progress on stderr while it submits and waits, so a long run is visibly
alive. In a terminal one line is rewritten in place a few times a second; into a file or a
pipe (a CI log) a whole line is written at most every PIPED_EVERY seconds, so a long run
leaves a heartbeat in the log rather than a flood. stdout (the report) is never touched."""

from __future__ import annotations

import asyncio
import time
from typing import TextIO

from skipline.cli.bench_tally import Tally

TERMINAL_EVERY = 0.25
PIPED_EVERY = 2.0
CLEAR_LINE = "\r\x1b[K"


class Progress:
    """Writes the tally's progress to `stream` until stopped."""

    def __init__(self, tally: Tally, stream: TextIO, terminal: bool) -> None:
        self.tally = tally
        self.stream = stream
        self.terminal = terminal
        self.started = time.monotonic()
        self.lines = 0

    @property
    def every(self) -> float:
        return TERMINAL_EVERY if self.terminal else PIPED_EVERY

    async def show(self) -> None:
        """Until cancelled: a line every `every` seconds (the first after one interval)."""
        while True:
            await asyncio.sleep(self.every)
            self.write(self.line())

    def write(self, text: str) -> None:
        if self.terminal:
            self.stream.write(f"{CLEAR_LINE}{text}")
        else:
            self.stream.write(f"{text}\n")
        self.stream.flush()
        self.lines += 1

    def done(self) -> None:
        """Leave the terminal line empty for the report."""
        if self.terminal and self.lines:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        plan, submissions, outcomes = self.tally.plan, self.tally.submissions, self.tally.outcomes
        if outcomes is None:
            return (f"bench: {elapsed:5.1f} s  submitted {submissions.sent} of {plan.orders}, "
                    f"accepted {len(submissions.accepted)}")
        final = sum(outcomes.statuses.values())
        expected = final + len(outcomes.pending) + outcomes.lost
        return (f"bench: {elapsed:5.1f} s  final {final} of {expected} accepted "
                f"(succeeded {outcomes.statuses['succeeded']}, "
                f"failed {outcomes.statuses['failed']})")
