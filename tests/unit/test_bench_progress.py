"""bench's progress line: rewritten in place in a terminal (and cleared before the report),
whole lines into a pipe; it counts submissions, then final orders."""

from __future__ import annotations

import io

from skipline.cli.bench_progress import CLEAR_LINE, Progress
from skipline.cli.bench_tally import Outcomes, Plan, Tally


def tally() -> Tally:
    plan = Plan(url="http://x", orders=10, concurrency=2, duration=0.0, user_type=None,
                wait=True, timeout=60)
    return Tally(plan)


def test_a_terminal_line_is_rewritten_then_cleared() -> None:
    shown, stream = tally(), io.StringIO()
    progress = Progress(shown, stream, terminal=True)
    progress.write(progress.line())
    shown.submissions.accepted = {"a": 1.0, "b": 1.0}
    shown.outcomes = Outcomes.expecting(["a", "b"])
    shown.outcomes.observed("a", 200, b'{"status": "succeeded", "finished_at": null}')
    progress.write(progress.line())
    progress.done()
    text = stream.getvalue()
    assert "\n" not in text and text.endswith(CLEAR_LINE)
    first, second = text.split(CLEAR_LINE)[1:3]
    assert "submitted 0 of 10" in first
    assert "final 1 of 2 accepted (succeeded 1, failed 0)" in second


def test_into_a_pipe_each_update_is_a_line() -> None:
    stream = io.StringIO()
    progress = Progress(tally(), stream, terminal=False)
    progress.write(progress.line())
    progress.done()
    assert stream.getvalue().count("\n") == 1 and CLEAR_LINE not in stream.getvalue()
