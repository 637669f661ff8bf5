"""The report of a `skipline bench` run: figures computed once from the tally, then shown as
one JSON object for scripts or a table for people, and the verdict that decides the exit code."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from rich.table import Table

from skipline.cli.bench_tally import BACKPRESSURE, NO_ANSWER, Outcomes, Submissions, Tally
from skipline.domain.scheduling import percentile


@dataclass(frozen=True)
class LatencyMs:
    p50: float
    p90: float
    p99: float
    max: float


@dataclass(frozen=True)
class SubmitSummary:
    sent: int
    not_sent: int
    seconds: float
    per_second: float | None
    accepted_per_second: float | None
    statuses: dict[str, int]
    latency_ms: LatencyMs | None


@dataclass(frozen=True)
class FinishSummary:
    succeeded: int
    failed: int
    cancelled: int
    unfinished: int
    lost: int
    seconds: float | None
    per_second: float | None


@dataclass(frozen=True)
class Summary:
    url: str
    orders: int
    concurrency: int
    duration: float
    user_type: str | None
    submit: SubmitSummary
    finish: FinishSummary | None
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "ok": self.ok}, indent=2)


def summarise(tally: Tally) -> Summary:
    plan = tally.plan
    outcomes = tally.outcomes
    return Summary(
        url=plan.url, orders=plan.orders, concurrency=plan.concurrency, duration=plan.duration,
        user_type=plan.user_type, submit=submit_summary(plan.orders, tally.submissions),
        finish=finish_summary(tally.submissions, outcomes) if outcomes else None,
        problems=problems(tally),
    )


def submit_summary(orders: int, submissions: Submissions) -> SubmitSummary:
    answers = submissions.answers
    seconds = submissions.seconds
    others = {name: count for name, count in sorted(answers.items())
              if name not in ("202", "503", NO_ANSWER)}
    return SubmitSummary(
        sent=submissions.sent, not_sent=orders - submissions.sent, seconds=round(seconds, 3),
        per_second=rate(submissions.sent, seconds),
        accepted_per_second=rate(len(submissions.accepted), seconds),
        statuses={"202": answers["202"], "503": answers["503"], **others,
                  NO_ANSWER: answers[NO_ANSWER]},
        latency_ms=latency_ms(submissions.latencies),
    )


def finish_summary(submissions: Submissions, outcomes: Outcomes) -> FinishSummary:
    """End to end runs from the first order accepted to the last one finished, both times read
    from the orders themselves (the server's clock), so client clock skew does not enter."""
    seconds = None
    if submissions.accepted and outcomes.last_finished is not None:
        seconds = outcomes.last_finished - min(submissions.accepted.values())
    return FinishSummary(
        succeeded=outcomes.statuses["succeeded"], failed=outcomes.statuses["failed"],
        cancelled=outcomes.statuses["cancelled"], unfinished=len(outcomes.pending),
        lost=outcomes.lost, seconds=None if seconds is None else round(seconds, 3),
        per_second=None if seconds is None else rate(sum(outcomes.statuses.values()), seconds),
    )


def latency_ms(seconds: list[float]) -> LatencyMs | None:
    """Nearest-rank percentiles (the rule /stats uses), in milliseconds."""
    if not seconds:
        return None
    ordered = sorted(seconds)

    def at(fraction: float) -> float:
        return round(1000 * (percentile(ordered, fraction) or 0.0), 2)

    return LatencyMs(p50=at(0.5), p90=at(0.9), p99=at(0.99), max=at(1.0))


def rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


def problems(tally: Tally) -> list[str]:
    """Why the run exits non-zero: orders not sent, answers that are neither an acceptance nor a
    refusal (503, 429), POSTs without an answer, orders lost or not seen final. Refusals and
    failed orders are results, not problems."""
    found = list(tally.notes)
    submissions = tally.submissions
    not_sent = tally.plan.orders - submissions.sent
    if not_sent:
        found.append(f"{not_sent} of {tally.plan.orders} orders were not sent")
    for answer, count in sorted(submissions.answers.items()):
        if answer != "202" and answer not in BACKPRESSURE:
            detail = submissions.first_detail.get(answer, "")
            found.append(f"{count} POST(s) {answer_words(answer)} (first: {detail})")
    outcomes = tally.outcomes
    if outcomes and outcomes.lost:
        found.append(f"{outcomes.lost} accepted order(s) are missing (404): lost")
    if outcomes and outcomes.pending:
        last = f" (last error: {outcomes.last_error})" if outcomes.last_error else ""
        found.append(f"{len(outcomes.pending)} accepted order(s) not seen final{last}")
    return found


def answer_words(answer: str) -> str:
    if answer == NO_ANSWER:
        return "got no answer, so whether they were accepted is unknown"
    return f"answered {answer.replace('_', ' ')}"


# --- the table ------------------------------------------------------------------------------
def table(summary: Summary) -> Table:
    """The summary for people: one line per figure, the verdict last."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in rows(summary):
        grid.add_row(label, value)
    return grid


def rows(summary: Summary) -> list[tuple[str, str]]:
    submit = summary.submit
    found = [
        ("server", summary.url),
        ("load", f"{summary.orders} orders over {summary.concurrency} connections, "
                 f"{summary.duration:g} s of work each"
                 + (f", tier {summary.user_type}" if summary.user_type else "")),
        ("submitted", f"{submit.sent} in {submit.seconds:.2f} s   "
                      f"{per_second(submit.per_second)}   "
                      f"accepted {per_second(submit.accepted_per_second)}"),
        ("answers", ", ".join(f"{name.replace('_', ' ')}: {count}"
                               for name, count in submit.statuses.items())),
        ("latency (202)", latency_text(submit.latency_ms)),
    ]
    if submit.not_sent:
        found.append(("not sent", str(submit.not_sent)))
    if summary.finish is not None:
        found.extend(finish_rows(summary.finish))
    found.append(("verdict", "ok" if summary.ok else "; ".join(summary.problems)))
    return found


def finish_rows(finish: FinishSummary) -> list[tuple[str, str]]:
    done = finish.succeeded + finish.failed + finish.cancelled
    seconds = "-" if finish.seconds is None else f"{finish.seconds:.2f} s"
    return [
        ("end to end", f"{done} in {seconds}   {per_second(finish.per_second)}   "
                       "first accepted to last finished"),
        ("outcome", f"succeeded {finish.succeeded}, failed {finish.failed}, cancelled "
                    f"{finish.cancelled}, unfinished {finish.unfinished}, lost {finish.lost}"),
    ]


def latency_text(latency: LatencyMs | None) -> str:
    if latency is None:
        return "-"
    return "   ".join(f"{name} {value:.1f} ms" for name, value in asdict(latency).items())


def per_second(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}/s"
