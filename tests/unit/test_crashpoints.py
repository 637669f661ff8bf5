"""The fault-injection hook: a crash point kills the process with SIGKILL when (and only when)
SKIPLINE_FAULT names it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

SCRIPT = "from skipline.crashpoints import crash_point; crash_point('after_claim'); print('alive')"


def run_with_fault(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SKIPLINE_FAULT"}
    if value is not None:
        env["SKIPLINE_FAULT"] = value
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=30,
    )


def test_the_named_crash_point_kills_the_process() -> None:
    finished = run_with_fault("after_claim")
    assert finished.returncode == -signal.SIGKILL
    assert "alive" not in finished.stdout


@pytest.mark.parametrize("value", [None, "", "before_complete"])
def test_other_crash_points_are_inert(value: str | None) -> None:
    finished = run_with_fault(value)
    assert finished.returncode == 0
    assert finished.stdout.strip() == "alive"
