"""`skipline bench` bookkeeping and report, without a server: which answers count as what, when
an order is accounted for, the percentiles and rates, and the verdict behind the exit code."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from skipline.cli.bench_report import latency_ms, summarise, table
from skipline.cli.bench_tally import Outcomes, Plan, Submissions, Tally

T0 = "2026-01-01T00:00:00Z"


def plan(orders: int = 3, wait: bool = True) -> Plan:
    return Plan(url="http://127.0.0.1:8080", orders=orders, concurrency=2, duration=0.0,
                user_type=None, wait=wait, timeout=60.0)


def order_json(order_id: str, status: str = "queued", created: str = T0,
               finished: str | None = None) -> bytes:
    return json.dumps({"id": order_id, "status": status, "created_at": created,
                       "finished_at": finished}).encode()


def problem_json(status: int, title: str, detail: str) -> bytes:
    return json.dumps({"type": "about:blank", "title": title, "status": status,
                       "detail": detail}).encode()


def accepted_tally(ids: list[str], orders: int | None = None) -> Tally:
    tally = Tally(plan(orders or len(ids)))
    tally.submissions.sending(0.0)
    for number, order_id in enumerate(ids):
        created = f"2026-01-01T00:00:0{number}Z"
        tally.submissions.answered(202, order_json(order_id, created=created), 0.01, 1.0)
    tally.outcomes = Outcomes.expecting(list(tally.submissions.accepted))
    return tally


def test_latency_percentiles_are_nearest_rank_in_milliseconds() -> None:
    latency = latency_ms([n / 1000 for n in range(100, 0, -1)])
    assert latency is not None
    assert (latency.p50, latency.p90, latency.p99, latency.max) == (50.0, 90.0, 99.0, 100.0)
    assert latency_ms([]) is None
    single = latency_ms([0.0042])
    assert single is not None and single.p50 == single.max == 4.2


def test_the_order_body_carries_duration_and_the_tier_asked_for() -> None:
    assert json.loads(plan().order_body()) == {"duration": 0.0}
    vip = Plan("http://h", 1, 1, 1.5, "vip", True, 1.0)
    assert json.loads(vip.order_body()) == {"duration": 1.5, "user_type": "vip"}


def test_answers_are_counted_and_only_202s_give_latencies() -> None:
    submissions = Submissions()
    submissions.sending(10.0)
    submissions.answered(202, order_json("a"), 0.004, 10.5)
    submissions.answered(503, problem_json(503, "Full", "100 queued"), 0.001, 10.7)
    submissions.no_answer("Server disconnected")
    assert submissions.answers == {"202": 1, "503": 1, "no_answer": 1}
    assert submissions.sent == 3
    assert submissions.latencies == [0.004]
    assert list(submissions.accepted) == ["a"]
    assert submissions.seconds == pytest.approx(0.7)
    assert submissions.first_detail["503"] == "503 Full: 100 queued"


def test_refusals_and_failed_orders_are_results_but_the_run_is_ok() -> None:
    tally = accepted_tally(["a", "b"], orders=4)
    tally.submissions.answered(503, problem_json(503, "Full", "cap"), 0.001, 1.0)
    tally.submissions.answered(429, b"", 0.001, 1.0)
    assert tally.outcomes is not None
    tally.outcomes.observed("a", 200, order_json("a", "succeeded", finished=T0))
    tally.outcomes.observed("b", 200, order_json("b", "failed", finished=T0))
    summary = summarise(tally)
    assert summary.ok, summary.problems
    assert summary.submit.statuses == {"202": 2, "503": 1, "429": 1, "no_answer": 0}
    assert summary.finish is not None
    assert (summary.finish.succeeded, summary.finish.failed) == (1, 1)


def test_every_unaccounted_order_is_a_problem() -> None:
    tally = accepted_tally(["a", "b", "c"], orders=7)
    tally.submissions.answered(500, b"oops", 0.001, 1.0)
    tally.submissions.answered(202, b"not json", 0.001, 1.0)
    tally.submissions.no_answer("Server disconnected")
    assert tally.outcomes is not None
    tally.outcomes.observed("a", 404, problem_json(404, "Not found", "no order a"))
    tally.outcomes.observed("b", 503, problem_json(503, "Unavailable", "store down"))
    text = "\n".join(summarise(tally).problems)
    assert "1 of 7 orders were not sent" in text
    assert "1 POST(s) answered 500 (first: 500 oops)" in text
    assert "1 POST(s) answered 202 unreadable" in text
    assert "got no answer" in text and "Server disconnected" in text
    assert "1 accepted order(s) are missing (404): lost" in text
    assert "2 accepted order(s) not seen final (last error: 503 Unavailable: store down)" in text


def test_an_order_leaves_pending_only_when_seen_final_or_missing() -> None:
    outcomes = Outcomes.expecting(["a", "b", "c"])
    outcomes.observed("a", 200, order_json("a", "running"))
    outcomes.observed("b", 200, b"{broken")
    outcomes.observed("c", 200, order_json("c", "cancelled", finished=T0))
    assert list(outcomes.pending) == ["a", "b"]
    assert outcomes.statuses == {"cancelled": 1}
    assert outcomes.last_error is not None and outcomes.last_error.startswith("200")


def test_end_to_end_runs_from_first_accepted_to_last_finished_on_the_server_clock() -> None:
    tally = accepted_tally(["a", "b"])  # created at :00 and :01
    assert tally.outcomes is not None
    tally.outcomes.observed("b", 200, order_json("b", "succeeded",
                                                 finished="2026-01-01T00:00:04+00:00"))
    tally.outcomes.observed("a", 200, order_json("a", "succeeded",
                                                 finished="2026-01-01T00:00:03.5Z"))
    finish = summarise(tally).finish
    assert finish is not None
    assert (finish.seconds, finish.per_second, finish.unfinished) == (4.0, 0.5, 0)


def test_no_wait_leaves_the_finish_section_out() -> None:
    tally = Tally(plan(1, wait=False))
    tally.submissions.sending(0.0)
    tally.submissions.answered(202, order_json("a"), 0.002, 0.5)
    summary = summarise(tally)
    data = json.loads(summary.to_json())
    assert data["finish"] is None and data["ok"] is True
    assert data["submit"]["per_second"] == 2.0
    assert data["submit"]["latency_ms"] == {"p50": 2.0, "p90": 2.0, "p99": 2.0, "max": 2.0}


def test_a_stop_reason_is_the_first_problem() -> None:
    tally = Tally(plan(5))
    tally.stop("cannot reach http://127.0.0.1:8080: Connection refused")
    tally.stop("a later reason")
    problems = summarise(tally).problems
    assert problems[0] == "cannot reach http://127.0.0.1:8080: Connection refused"
    assert "a later reason" not in " ".join(problems)


def test_the_table_shows_every_figure_and_the_verdict() -> None:
    tally = accepted_tally(["a"])
    assert tally.outcomes is not None
    tally.outcomes.observed("a", 200, order_json("a", "succeeded", finished=T0))
    out = io.StringIO()
    Console(file=out, width=120).print(table(summarise(tally)))
    text = out.getvalue()
    for fragment in ("http://127.0.0.1:8080", "202: 1", "503: 0", "p99 10.0 ms",
                     "succeeded 1", "lost 0", "verdict"):
        assert fragment in text, text
    assert text.rstrip().endswith("ok")
