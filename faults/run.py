"""`python -m faults.run <scenario>|short|long|list`: run scenarios against real skipline
processes and print one JSON line per scenario, then (for a tier) one summary line.
The exit status is 0 only when every scenario passed."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from faults.checker import Report, summarise
from faults.registry import LONG_TIER, SCENARIOS, SHORT_TIER, Entry
from faults.scenarios.disk_full import Unsupported

USAGE = "usage: python -m faults.run <scenario>|short|long|list [--long]"


async def run_one(entry: Entry, long: bool) -> Report | str | None:
    """Run one scenario within its time bound: its report; the reason when this machine cannot
    run it; None (after an error line) when it crashed or overran."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(entry.time_limit(long)):
            report = await entry.run(long)
    except Unsupported as exc:
        print(json.dumps({"scenario": entry.name, "skipped": str(exc)}), flush=True)
        return str(exc)
    except Exception as exc:  # a scenario that cannot finish is a failed scenario
        print(json.dumps({"scenario": entry.name, "passed": False,
                          "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return None
    report.checks["seconds"] = round(time.monotonic() - started, 1)
    print(report.to_json(), flush=True)
    return report


async def run_tier(names: list[str], long: bool) -> bool:
    reports: dict[str, Report] = {}
    crashed: list[str] = []
    skipped: list[str] = []
    for name in names:
        report = await run_one(SCENARIOS[name], long)
        if isinstance(report, Report):
            reports[name] = report
        else:
            (crashed if report is None else skipped).append(name)
    summary = summarise(reports)
    summary["crashed"], summary["skipped"] = crashed, skipped
    summary["tier_passed"] = summary["tier_passed"] and not crashed
    print(json.dumps(summary), flush=True)
    return bool(summary["tier_passed"])


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 2
    target, long = argv[0], "--long" in argv[1:]
    if target == "list":
        for name, entry in SCENARIOS.items():
            print(f"{name}: {entry.summary}")
        return 0
    tiers = {"short": (SHORT_TIER, False), "long": (LONG_TIER, True)}
    if target in tiers:
        names, long = tiers[target]
        return 0 if asyncio.run(run_tier(names, long)) else 1
    if target not in SCENARIOS:
        print(f"unknown scenario {target!r}; try: python -m faults.run list", file=sys.stderr)
        return 2
    report = asyncio.run(run_one(SCENARIOS[target], long))
    return 0 if isinstance(report, Report) and report.passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
