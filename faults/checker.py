"""The checker: compares what clients were told (the history) with what the store holds once the
run has drained, and says whether skipline kept its promise.

valid iff lost == 0 and unexpected == 0:
- lost: acknowledged, yet the store does not hold it in the final status it must reach
  (`succeeded`; `failed` for poison orders) — a broken promise;
- unexpected: the store holds an order whose client was refused (or that no client sent) — a
  refusal that was not one, so a client retrying with a new key would run it twice.
Unknown outcomes are allowed either way; those the store holds are `recovered`. An unknown
that named its order (a 503 saying the outcome is unknown) must name the order the store holds
for its key, if any: otherwise it is a mismatched id, like an acknowledgement's.
Duplicate runs are counted, not judged: at least once allows them. What the fence forbids is
judged: a stored result written by a run that no longer held the lease (`stale_results`: the
result a harness handler returns names the attempt that produced it, and only the latest
attempt's lease can complete), and an order finished by two statements (`finished_twice`, from
the database's own finish notifications, in scenarios that listen to them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from faults.history import Answer, Fault, History, Post
from faults.journal import Run, overlapping_orders
from skipline.domain.models import Order, Status
from skipline.domain.scheduling import percentile

EXAMPLES = 5
"""How many offending keys a report lists, to start a diagnosis."""


@dataclass(frozen=True, slots=True)
class Spread:
    """p50 / p99 / max of a set of durations in seconds (None when there were none)."""

    count: int
    p50: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return cls(
            len(values), rounded(percentile(values, 0.5)), rounded(percentile(values, 0.99)),
            rounded(max(values) if values else None),
        )


@dataclass(slots=True)
class Report:
    """One scenario's verdict; printed as one JSON line."""

    scenario: str
    attempted: int
    acknowledged: int
    refused: int
    refused_by_status: dict[str, int]
    """Refusals per HTTP status ("none": the connection never opened)."""
    unknown: int
    completed: int
    failed: int
    lost: int
    unexpected: int
    recovered: int
    unknown_absent: int
    mismatched_ids: int
    duplicate_runs: int
    handler_runs: int
    rerun_orders: int
    """Orders whose handler ran more than once (from the journal): side effects repeated."""
    overlapping_runs: int
    """Orders two handler runs worked on at the same time."""
    faults: int
    recovery_to_next_202: Spread
    recovery_to_completion: Spread
    examples: dict[str, list[str]] = field(default_factory=dict)
    workdir: str = ""
    """Where the run's database, logs, history and journal are (kept when it did not pass)."""
    undelivered_callbacks: int = 0
    """Final orders that asked for a callback and whose receiver never accepted one."""
    checks: dict[str, Any] = field(default_factory=dict)
    """Scenario-specific expectations (name -> observed value or verdict)."""
    failures: list[str] = field(default_factory=list)
    """Scenario-specific expectations that did not hold."""
    stale_results: int = 0
    """Succeeded orders whose result came from an attempt older than their last: a completion
    under a lease that had been taken over was accepted (a broken fence)."""
    finished_twice: int = 0
    """Orders the database announced as finished more than once (scenarios that listen)."""
    must_be_valid: bool = True
    """False only where a scenario turns a safeguard off to show the checker catching it."""

    @property
    def valid(self) -> bool:
        return (self.lost == 0 and self.unexpected == 0 and self.mismatched_ids == 0
                and self.undelivered_callbacks == 0 and self.stale_results == 0
                and self.finished_twice == 0)

    @property
    def passed(self) -> bool:
        return (self.valid or not self.must_be_valid) and not self.failures

    def expect(self, name: str, ok: bool, observed: Any) -> None:
        """Record a scenario-specific check; a false one makes the scenario fail."""
        self.checks[name] = observed
        if not ok:
            self.failures.append(f"{name}: {observed}")

    def to_json(self) -> str:
        data = asdict(self)
        data["valid"] = self.valid
        data["passed"] = self.passed
        return json.dumps(data, sort_keys=False)


def order_key(order: Order) -> str | None:
    """The Idempotency-Key a harness client sent (also kept in the payload, for listings)."""
    if order.idempotency_key:
        return order.idempotency_key
    payload = order.payload
    return payload.get("key") if isinstance(payload, dict) else None


def check(
    scenario: str, history: History, orders: Sequence[Order], runs: Sequence[Run] = (),
    undelivered: Iterable[str] = (),
) -> Report:
    """The verdict on one run. `orders` is the store's final state; `runs` the handler journal;
    `undelivered` the final orders with a callback that its receiver never accepted."""
    by_key = {key: o for o in orders if (key := order_key(o)) is not None}
    told: dict[Answer, dict[str, Post]] = {outcome: {} for outcome in Answer}
    for submission in history.submissions:
        told[submission.outcome][submission.key] = submission
    acked, unknown = told[Answer.ACKNOWLEDGED], told[Answer.UNKNOWN]

    lost = [k for k, s in acked.items() if _final_status(by_key.get(k)) != s.expect]
    named = {k: s for k, s in unknown.items() if s.order_id is not None}
    mismatched = [
        k for k, s in (acked | named).items() if k in by_key and by_key[k].id != s.order_id
    ]
    unexpected = [
        _describe_unexpected(o, told[Answer.REFUSED].get(order_key(o) or ""))
        for o in orders if order_key(o) not in acked and order_key(o) not in unknown
    ]
    recovered = [k for k, s in unknown.items() if _final_status(by_key.get(k)) == s.expect]
    stale = [o.id for o in orders if _stale_result(o)]
    statuses = Counter(o.status for o in orders if order_key(o) in acked or order_key(o) in unknown)
    deaths = {f.pid: f.at for f in history.faults if f.pid is not None}
    next_202, completion = _recovery(history, orders, runs)
    return Report(
        scenario=scenario,
        attempted=len(history.submissions),
        acknowledged=len(acked),
        refused=len(told[Answer.REFUSED]),
        refused_by_status=_by_status(told[Answer.REFUSED].values()),
        unknown=len(unknown),
        completed=statuses[Status.SUCCEEDED],
        failed=statuses[Status.FAILED],
        lost=len(lost),
        unexpected=len(unexpected),
        recovered=len(recovered),
        unknown_absent=sum(1 for k in unknown if k not in by_key),
        mismatched_ids=len(mismatched),
        duplicate_runs=sum(1 for o in orders if o.attempts > 1),
        handler_runs=len(runs),
        rerun_orders=sum(1 for n in Counter(r.order_id for r in runs).values() if n > 1),
        overlapping_runs=len(overlapping_orders(list(runs), deaths)),
        faults=len(history.faults),
        recovery_to_next_202=Spread.of(next_202),
        recovery_to_completion=Spread.of(completion),
        examples={
            name: keys[:EXAMPLES]
            for name, keys in (("lost", lost), ("unexpected", unexpected), ("mismatch", mismatched),
                               ("undelivered", sorted(undelivered)), ("stale_result", stale))
            if keys
        },
        undelivered_callbacks=len(set(undelivered)),
        stale_results=len(stale),
    )


def awaiting_callbacks(orders: Sequence[Order]) -> set[str]:
    """The final orders that asked for a callback: each must be delivered at least once."""
    return {o.id for o in orders if o.callback_url is not None and o.status.is_final}


def _stale_result(order: Order) -> bool:
    """The stored result names an attempt (harness handlers return it) older than the order's
    last claim: it was recorded under a lease token that had already been replaced."""
    result = order.result
    if order.status is not Status.SUCCEEDED or not isinstance(result, dict):
        return False
    attempt = result.get("attempt")
    return isinstance(attempt, int) and attempt != order.attempts


def _describe_unexpected(order: Order, refusal: Post | None) -> str:
    """Enough to start a diagnosis: the order, and what its client was told and when."""
    told = "never sent" if refusal is None else (
        f"refused {refusal.status} {refusal.detail[:80]!r}, sent {refusal.sent_at:.3f}, "
        f"answered {refusal.done_at:.3f}"
    )
    return f"{order.id} created {order.created_at:.3f}: {told}"


def _by_status(submissions: Iterable[Post]) -> dict[str, int]:
    return dict(Counter(str(s.status).lower() for s in submissions))


def _final_status(order: Order | None) -> str | None:
    return None if order is None else order.status.value


def _recovery(
    history: History, orders: Sequence[Order], runs: Sequence[Run]
) -> tuple[list[float], list[float]]:
    """Per fault: seconds to the next 202, and to the completion of what was running then."""
    accepted = sorted(s.done_at for s in history.submissions if s.status == 202)
    finished = {o.id: o.finished_at for o in orders if o.status.is_final}
    to_202: list[float] = []
    to_completion: list[float] = []
    for fault in history.faults:
        later = [t for t in accepted if t > fault.at]
        if later:
            to_202.append(later[0] - fault.at)
        interrupted = _running_at(fault, runs)
        ends = [finished.get(order_id) for order_id in interrupted]
        if interrupted and all(end is not None for end in ends):
            to_completion.append(max(end for end in ends if end is not None) - fault.at)
    return to_202, to_completion


def _running_at(fault: Fault, runs: Sequence[Run]) -> set[str]:
    """Orders a fault interrupted: runs of the faulted process (of every process when the fault
    has none, like a database stop) that had started and not returned by then."""
    return {
        run.order_id
        for run in runs
        if (fault.pid is None or run.pid == fault.pid)
        and run.started <= fault.at
        and (run.ended is None or run.ended > fault.at)
    }


def summarise(reports: Mapping[str, Report]) -> dict[str, Any]:
    """A tier's verdict: which scenarios passed and the totals that matter. Scenarios that turn
    a safeguard off are left out of the lost/unexpected totals: their violations are the point."""
    judged = [r for r in reports.values() if r.must_be_valid]
    return {
        "tier_passed": all(r.passed for r in reports.values()),
        "scenarios": {name: r.passed for name, r in reports.items()},
        "lost": sum(r.lost for r in judged),
        "unexpected": sum(r.unexpected for r in judged),
        "undelivered_callbacks": sum(r.undelivered_callbacks for r in judged),
        "stale_results": sum(r.stale_results for r in judged),
        "finished_twice": sum(r.finished_twice for r in judged),
        "acknowledged": sum(r.acknowledged for r in reports.values()),
        "faults": sum(r.faults for r in reports.values()),
    }
