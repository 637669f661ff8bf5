"""`python -m faults.table run.jsonl`: the reports of a tier run as a Markdown table (for
docs/reliability.md), one row per scenario."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = (
    "scenario", "passed", "attempted", "acknowledged", "refused", "unknown", "lost",
    "unexpected", "recovered", "duplicate_runs", "rerun_orders", "faults",
    "to next 202 p50 / p99 / max (s)", "to completion p50 / p99 / max (s)",
)


def spread(value: dict[str, Any]) -> str:
    if not value.get("count"):
        return "-"
    return " / ".join(f"{value[k]:.2f}" for k in ("p50", "p99", "max"))


def row(report: dict[str, Any]) -> list[str]:
    if "attempted" not in report:
        reason = report.get("error") or report.get("skipped") or "?"
        return [report["scenario"], "no", reason, *[""] * (len(COLUMNS) - 3)]
    passed = "yes" if report["passed"] else "**no**"
    if not report["must_be_valid"] and report["passed"]:
        passed = "yes (caught)"
    counts = [str(report[c]) for c in COLUMNS[2:12]]
    return [
        report["scenario"], passed, *counts,
        spread(report["recovery_to_next_202"]), spread(report["recovery_to_completion"]),
    ]


def table(lines: list[str]) -> str:
    reports = [json.loads(line) for line in lines if line.strip()]
    rows = [row(r) for r in reports if "scenario" in r]
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(out)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()))
