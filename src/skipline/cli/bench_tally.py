"""What a `skipline bench` run counts: the answers to its POSTs and what became of the accepted
orders. No I/O here (bench.py does the HTTP and feeds these), so the bookkeeping that decides
whether an order is accounted for is unit-tested on its own."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FINAL_STATUSES = ("succeeded", "failed", "cancelled")
NO_ANSWER = "no_answer"
UNREADABLE_202 = "202_unreadable"
BACKPRESSURE = frozenset({"429", "503"})
"""Answers that mean "not now" (queue full, draining, rate limited): results, not problems."""


@dataclass(frozen=True)
class Plan:
    """The run the user asked for."""

    url: str
    orders: int
    concurrency: int
    duration: float
    user_type: str | None
    wait: bool
    timeout: float

    def order_body(self) -> bytes:
        """The one body every POST sends."""
        body: dict[str, Any] = {"duration": self.duration}
        if self.user_type is not None:
            body["user_type"] = self.user_type
        return json.dumps(body).encode()


@dataclass
class Submissions:
    """What the POSTs got. Latencies are of the 202 answers only (a refusal is cheap and would
    flatter them); `accepted` maps each order id to its created_at, in acceptance order."""

    answers: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    accepted: dict[str, float] = field(default_factory=dict)
    first_detail: dict[str, str] = field(default_factory=dict)
    first_sent: float | None = None
    last_answer: float | None = None

    @property
    def sent(self) -> int:
        return sum(self.answers.values())

    @property
    def seconds(self) -> float:
        """First POST sent to last answer received."""
        if self.first_sent is None or self.last_answer is None:
            return 0.0
        return self.last_answer - self.first_sent

    def sending(self, now: float) -> None:
        if self.first_sent is None:
            self.first_sent = now

    def no_answer(self, reason: str) -> None:
        """The request went out and nothing came back: accepted or not, nobody knows."""
        self.answers[NO_ANSWER] += 1
        self.first_detail.setdefault(NO_ANSWER, reason)

    def answered(self, status: int, body: bytes, latency: float, now: float) -> None:
        self.last_answer = now
        if status != 202:
            self._count(str(status), problem_detail(status, body))
            return
        try:
            order = json.loads(body)
            self.accepted[order["id"]] = parse_time(order["created_at"])
        except (ValueError, TypeError, KeyError):
            self._count(UNREADABLE_202, body[:200].decode(errors="replace"))
            return
        self.answers["202"] += 1
        self.latencies.append(latency)

    def _count(self, answer: str, detail: str) -> None:
        self.answers[answer] += 1
        self.first_detail.setdefault(answer, detail)


@dataclass
class Outcomes:
    """What became of the accepted orders; `pending` holds those not yet seen final, oldest
    first. An order leaves it only when seen final or seen missing."""

    pending: dict[str, None] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    last_finished: float | None = None
    last_error: str | None = None

    @classmethod
    def expecting(cls, order_ids: list[str]) -> Outcomes:
        return cls(pending=dict.fromkeys(order_ids))

    def observed(self, order_id: str, status: int, body: bytes) -> None:
        """One answer to GET /orders/{id}: final, still going, missing (404: lost) or an error
        to try again."""
        if status == 404:
            self.lost += 1
            self.pending.pop(order_id, None)
            return
        try:
            order = json.loads(body) if status == 200 else None
            final = order is not None and order["status"] in FINAL_STATUSES
        except (ValueError, TypeError, KeyError):
            order, final = None, False
        if order is None:
            self.last_error = problem_detail(status, body)
        elif final:
            self._finished(order_id, order)

    def _finished(self, order_id: str, order: dict[str, Any]) -> None:
        self.statuses[order["status"]] += 1
        self.pending.pop(order_id, None)
        if order.get("finished_at"):
            finished = parse_time(order["finished_at"])
            self.last_finished = max(finished, self.last_finished or finished)


@dataclass
class Tally:
    """Everything one run counted, and why it stopped early if it did."""

    plan: Plan
    submissions: Submissions = field(default_factory=Submissions)
    outcomes: Outcomes | None = None
    stop_reason: str | None = None
    notes: list[str] = field(default_factory=list)

    def stop(self, reason: str) -> None:
        """Stop sending and polling; the first reason is the one that counts."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.notes.append(reason)


def problem_detail(status: int, body: bytes) -> str:
    """'status title: detail' of a problem+json body, else the start of the body."""
    try:
        problem = json.loads(body)
        return f"{status} {problem['title']}: {problem['detail']}"
    except (ValueError, TypeError, KeyError):
        return f"{status} {body[:200].decode(errors='replace').strip()}".strip()


def parse_time(text: str) -> float:
    """An RFC 3339 time as seconds since the epoch."""
    return datetime.fromisoformat(text).timestamp()
