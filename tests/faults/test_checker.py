"""The checker on hand-made histories: every verdict it can give, and the arithmetic of recovery
times. Pure and fast: no server, no store."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from faults import journal
from faults.checker import Report, awaiting_callbacks, check
from faults.client import unknown_order
from faults.history import Answer, History, Post
from faults.journal import Run, overlapping_orders, read_runs
from skipline.domain.models import Order, Status


def order(key: str, status: Status = Status.SUCCEEDED, *, order_id: str | None = None,
          attempts: int = 1, finished_at: float | None = 20.0) -> Order:
    return Order(
        id=order_id or f"id-{key}", seq=1, tier="regular", priority=1, status=status,
        attempts=attempts, rescues=0, payload={"key": key}, duration=0.0, owner="",
        created_at=1.0, finished_at=finished_at if status.is_final else None,
        idempotency_key=key,
    )


def told(key: str, outcome: Answer, status: int | None = None, at: float = 1.0,
         expect: str = "succeeded", order_id: str | None = None) -> Post:
    if order_id is None and outcome is Answer.ACKNOWLEDGED:
        order_id = f"id-{key}"
    return Post(key, at - 0.01, at, outcome, status, order_id, expect)


def history_of(*submissions: Post) -> History:
    history = History()
    for submission in submissions:
        history.record(submission)
    return history


def test_acknowledged_and_succeeded_is_valid() -> None:
    history = history_of(told("a", Answer.ACKNOWLEDGED, 202), told("b", Answer.REFUSED, 503))
    report = check("s", history, [order("a")])
    assert (report.attempted, report.acknowledged, report.refused) == (2, 1, 1)
    assert report.completed == 1 and report.lost == 0 and report.unexpected == 0
    assert report.valid and report.passed


def test_an_acknowledged_order_missing_or_not_succeeded_is_lost() -> None:
    history = history_of(told("a", Answer.ACKNOWLEDGED, 202), told("b", Answer.ACKNOWLEDGED, 202))
    report = check("s", history, [order("b", Status.FAILED)])
    assert report.lost == 2
    assert sorted(report.examples["lost"]) == ["a", "b"]
    assert not report.valid


def test_a_poison_order_must_end_failed() -> None:
    history = history_of(told("p", Answer.ACKNOWLEDGED, 202, expect="failed"))
    assert check("s", history, [order("p", Status.FAILED)]).valid
    assert check("s", history, [order("p", Status.SUCCEEDED)]).lost == 1


def test_a_stored_order_whose_client_was_refused_is_unexpected() -> None:
    history = history_of(told("a", Answer.REFUSED, 503))
    report = check("s", history, [order("a"), order("never-sent")])
    assert report.unexpected == 2
    assert not report.valid


def test_unknown_outcomes_are_recovered_or_absent_and_both_are_allowed() -> None:
    history = history_of(told("u1", Answer.UNKNOWN), told("u2", Answer.UNKNOWN))
    report = check("s", history, [order("u1")])
    assert (report.unknown, report.recovered, report.unknown_absent) == (2, 1, 1)
    assert report.valid


def test_a_503_whose_outcome_is_unknown_may_be_stored_or_not() -> None:
    """The server said it does not know (its commit was in doubt) and named the order: like no
    answer at all, neither outcome is a broken promise, and neither is `unexpected`."""
    history = history_of(
        told("stored", Answer.UNKNOWN, 503, order_id="id-stored"),
        told("absent", Answer.UNKNOWN, 503, order_id="id-absent"),
    )
    report = check("s", history, [order("stored")])
    assert (report.unknown, report.recovered, report.unknown_absent) == (2, 1, 1)
    assert (report.refused, report.lost, report.unexpected, report.mismatched_ids) == (0, 0, 0, 0)
    assert report.valid


def test_an_unknown_outcome_that_named_another_order_than_the_stored_one_is_invalid() -> None:
    history = history_of(told("a", Answer.UNKNOWN, 503, order_id="id-told"))
    report = check("s", history, [order("a", order_id="id-stored")])
    assert report.mismatched_ids == 1
    assert report.examples["mismatch"] == ["a"]
    assert not report.valid


def test_the_client_records_a_503_as_unknown_only_when_it_says_so_and_names_the_order() -> None:
    unknown = {"type": "urn:skipline:problem:outcome-unknown", "title": "t", "status": 503,
               "detail": "d", "outcome": "unknown", "order_id": "abc",
               "location": "/orders/abc"}
    assert unknown_order(503, json.dumps(unknown)) == "abc"
    plain = {"type": "urn:skipline:problem:store-unavailable", "title": "t", "status": 503,
             "detail": "d"}
    assert unknown_order(503, json.dumps(plain)) is None
    assert unknown_order(500, json.dumps(unknown)) is None
    assert unknown_order(503, json.dumps({**unknown, "order_id": ""})) is None
    assert unknown_order(503, json.dumps({**unknown, "outcome": "stored"})) is None
    assert unknown_order(503, "<html>Service Unavailable</html>") is None
    assert unknown_order(503, "[1, 2]") is None


def test_an_acknowledged_id_that_differs_from_the_stored_one_is_invalid() -> None:
    history = history_of(told("a", Answer.ACKNOWLEDGED, 202))
    report = check("s", history, [order("a", order_id="another")])
    assert report.mismatched_ids == 1
    assert not report.valid


def test_duplicate_runs_are_counted_not_judged() -> None:
    history = history_of(told("a", Answer.ACKNOWLEDGED, 202))
    report = check("s", history, [order("a", attempts=3)])
    assert report.duplicate_runs == 1
    assert report.valid


def test_recovery_times_are_measured_from_each_fault() -> None:
    history = history_of(
        told("before", Answer.ACKNOWLEDGED, 202, at=9.0),
        told("after", Answer.ACKNOWLEDGED, 202, at=12.5),
    )
    history.fault("SIGKILL", pid=7, at=10.0)
    runs = [Run("id-before", 7, started=9.5, ended=None), Run("id-after", 8, 13.0, 13.5)]
    orders = [order("before", finished_at=16.0), order("after", finished_at=13.5)]
    report = check("s", history, orders, runs)
    assert report.recovery_to_next_202.max == 2.5
    assert report.recovery_to_completion.max == 6.0
    assert report.recovery_to_completion.count == 1
    assert report.rerun_orders == 0


def test_overlapping_runs_need_two_runs_at_once() -> None:
    runs = [Run("x", 1, 0.0, 2.0), Run("x", 2, 1.0, 3.0), Run("y", 1, 0.0, 1.0),
            Run("y", 2, 1.5, 2.0), Run("z", 3, 0.0, None), Run("z", 4, 0.5, 0.7)]
    assert overlapping_orders(runs, deaths={}) == {"x"}
    assert overlapping_orders(runs, deaths={3: 1.0}) == {"x", "z"}


def test_the_report_is_one_json_line_with_its_verdict() -> None:
    report = check("s", history_of(told("a", Answer.ACKNOWLEDGED, 202)), [])
    report.expect("something", False, 3)
    line = report.to_json()
    assert "\n" not in line
    data = json.loads(line)
    assert data["valid"] is False and data["passed"] is False
    assert data["failures"] == ["something: 3"]


def test_a_scenario_that_turns_a_safeguard_off_passes_when_the_violation_is_caught() -> None:
    report: Report = check("s", history_of(told("a", Answer.ACKNOWLEDGED, 202)), [])
    report.must_be_valid = False
    report.expect("caught", report.lost > 0, report.lost)
    assert report.passed


def test_history_round_trips_through_its_file(tmp_path: Path) -> None:
    history = history_of(told("a", Answer.ACKNOWLEDGED, 202), told("b", Answer.UNKNOWN),
                         told("c", Answer.UNKNOWN, 503, order_id="id-c"))
    history.fault("SIGKILL", pid=3, at=5.0)
    history.save(tmp_path / "h.jsonl")
    again = History.load(tmp_path / "h.jsonl")
    assert again.submissions == history.submissions
    assert again.faults == history.faults


def test_the_journal_pairs_starts_and_ends(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal.append("start", "a", str(path))
    journal.append("end", "a", str(path))
    journal.append("start", "b", str(path))
    runs = read_runs(path)
    assert {(r.order_id, r.ended is None) for r in runs} == {("a", False), ("b", True)}


def test_a_final_order_whose_callback_never_arrived_makes_the_run_invalid() -> None:
    history = history_of(told("a", Answer.ACKNOWLEDGED, 202), told("b", Answer.ACKNOWLEDGED, 202))
    with_callbacks = [
        msgspec.structs.replace(order(key), callback_url="http://127.0.0.1:1/hook/")
        for key in ("a", "b")
    ]
    assert awaiting_callbacks(with_callbacks) == {"id-a", "id-b"}
    assert awaiting_callbacks([order("c"), order("d", Status.QUEUED)]) == set()

    report = check("s", history, with_callbacks, undelivered={"id-b"})

    assert report.undelivered_callbacks == 1 and report.examples["undelivered"] == ["id-b"]
    assert report.lost == 0 and not report.valid and not report.passed
    assert check("s", history, with_callbacks, undelivered=set()).valid


def test_a_result_from_an_attempt_older_than_the_last_is_a_stale_result() -> None:
    """Only the latest claim's lease can complete an order: a stored result naming an earlier
    attempt was accepted under a lease token that had been replaced (a broken fence)."""
    history = history_of(told("a", Answer.ACKNOWLEDGED, 202), told("b", Answer.ACKNOWLEDGED, 202))
    fenced = msgspec.structs.replace(order("a", attempts=2), result={"pid": 2, "attempt": 2})
    stale = msgspec.structs.replace(order("b", attempts=2), result={"pid": 1, "attempt": 1})
    report = check("s", history, [fenced, stale])
    assert report.lost == 0 and report.stale_results == 1
    assert report.examples["stale_result"] == ["id-b"]
    assert not report.valid
    assert check("s", history, [fenced, msgspec.structs.replace(stale, result=None)]).valid


def test_an_order_finished_twice_makes_the_run_invalid() -> None:
    report = check("s", history_of(told("a", Answer.ACKNOWLEDGED, 202)), [order("a")])
    assert report.valid
    report.finished_twice = 1
    assert not report.valid and not report.passed
