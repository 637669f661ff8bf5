"""The deployment examples in deploy/: the systemd units pass `systemd-analyze verify` (when
it is installed) and, either way, stop skipline the way its drain needs: SIGTERM to skipline
itself (no shell in between), KillMode=mixed, and a stop timeout longer than the drain. The
Dockerfile uses the exec form and the compose file a grace period longer than the drain.
(Docker cannot build images here, so the image itself is not built by the tests.)"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skipline.runtime import API_SHUTDOWN_TIMEOUT
from skipline.worker.recorder import RELEASE_SECONDS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = ["skipline.service", "skipline-worker@.service"]


def directives(path: Path) -> dict[str, list[str]]:
    """Key -> values of a unit file (a key may repeat, like Environment=)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def environment(unit: dict[str, list[str]]) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in unit.get("Environment", []))


@pytest.mark.parametrize("name", UNITS)
def test_a_unit_stops_skipline_with_time_to_drain(name: str) -> None:
    unit = directives(DEPLOY / name)
    assert unit["KillSignal"] == ["SIGTERM"] and unit["KillMode"] == ["mixed"]
    drain = float(environment(unit)["SKIPLINE_DRAIN_TIMEOUT"])
    needed = drain + RELEASE_SECONDS + (API_SHUTDOWN_TIMEOUT if "serve" in unit["ExecStart"][0]
                                        else 0)
    assert float(unit["TimeoutStopSec"][0]) > needed
    command = unit["ExecStart"][0].split()
    assert command[0].startswith("/") and command[0].endswith("/skipline"), "no shell wrapper"
    assert command[1] in ("serve", "worker")
    assert unit["Type"] == ["exec"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name", UNITS)
def test_systemd_analyze_verify_finds_nothing(name: str, tmp_path: Path) -> None:
    """The unit as shipped, but pointing at this checkout's skipline (verify checks that the
    command exists)."""
    skipline = Path(sys.executable).parent / "skipline"
    text = (DEPLOY / name).read_text().replace("/opt/skipline/.venv/bin/skipline", str(skipline))
    (tmp_path / name).write_text(text)
    instance = name.replace("@.service", "@1.service")
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / instance)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_dockerfile_runs_skipline_in_exec_form_and_stops_it_with_sigterm() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = {line.split()[0]: line.split(None, 1)[1]
                    for line in text.splitlines() if line and line[0].isupper()}
    assert json.loads(instructions["ENTRYPOINT"]) == ["skipline"]
    assert json.loads(instructions["CMD"]) == ["serve"]
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    assert "SKIPLINE_HOST=0.0.0.0" in text, "listen beyond the container's loopback"
    root = DEPLOY.parent
    for copied in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for source in copied.split():
            assert (root / source).exists(), f"COPY {source}: not in the repository"


def test_compose_gives_the_drain_time_before_sigkill() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    grace = re.search(r"stop_grace_period: (\d+)s", text)
    drain = re.search(r'SKIPLINE_DRAIN_TIMEOUT: "(\d+)"', text)
    assert grace and drain
    assert int(grace.group(1)) > int(drain.group(1)) + API_SHUTDOWN_TIMEOUT + RELEASE_SECONDS
    assert "stop_signal: SIGTERM" in text and "init: true" in text
