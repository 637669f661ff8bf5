"""The history: what every client was told about every submission, and when each fault struck.

Clients never retry during a run: each submission has a fresh `Idempotency-Key` and exactly one
recorded outcome. The checker compares this history with the store's final state.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Answer(StrEnum):
    """What a client learnt from one POST /orders."""

    ACKNOWLEDGED = "acknowledged"
    """A 202 (or a 200 replay) with the order's id: the order must now run."""
    REFUSED = "refused"
    """An HTTP error status, or no connection at all: the order must not exist."""
    UNKNOWN = "unknown"
    """The request may have reached the server but no answer came back (timeout, reset), or
    the server answered that it does not know either: a 503 whose problem says `"outcome":
    "unknown"` (its commit was in doubt), with the order's id. Either way the order may or
    may not exist."""


@dataclass(frozen=True, slots=True)
class Post:
    """One POST /orders as its client saw it. Times are seconds since the epoch."""

    key: str
    sent_at: float
    done_at: float
    outcome: Answer
    status: int | None = None
    """The HTTP status; None when no response arrived (0 is never used)."""
    order_id: str | None = None
    """The id the server gave: of the acknowledged order, or of the order whose outcome it
    said was unknown (None when it gave none)."""
    expect: str = "succeeded"
    """The final status this order must reach if it exists (poison orders: failed)."""
    detail: str = ""
    body: dict[str, Any] | None = None
    """The JSON body sent: a client resolving an unknown sends it again with its key (the
    same key with another body would be refused, 422)."""
    api_key: str | None = None
    """The API key it was sent with (None: anonymous); a re-send must use it too, since an
    Idempotency-Key belongs to its caller."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault: a process killed (by us or by itself), a signal, a database stop."""

    at: float
    kind: str
    pid: int | None = None


@dataclass(slots=True)
class History:
    """Everything recorded during one scenario run."""

    submissions: list[Post] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)

    def record(self, submission: Post) -> None:
        self.submissions.append(submission)

    def fault(self, kind: str, pid: int | None = None, at: float | None = None) -> Fault:
        event = Fault(time.time() if at is None else at, kind, pid)
        self.faults.append(event)
        return event

    def count(self, outcome: Answer) -> int:
        return sum(1 for s in self.submissions if s.outcome is outcome)

    def save(self, path: Path) -> None:
        """Write the history as JSON lines, so a failed run can be checked again offline."""
        with path.open("w", encoding="utf-8") as out:
            for submission in self.submissions:
                out.write(json.dumps({"submission": asdict(submission)}) + "\n")
            for fault in self.faults:
                out.write(json.dumps({"fault": asdict(fault)}) + "\n")

    @classmethod
    def load(cls, path: Path) -> History:
        history = cls()
        for line in path.read_text(encoding="utf-8").splitlines():
            record: dict[str, Any] = json.loads(line)
            if "submission" in record:
                fields = record["submission"]
                fields["outcome"] = Answer(fields["outcome"])
                history.record(Post(**fields))
            else:
                history.faults.append(Fault(**record["fault"]))
        return history
