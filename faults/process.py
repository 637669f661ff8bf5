"""Real `skipline serve` processes on 127.0.0.1, started, killed and restarted by the harness."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from faults import journal
from skipline.testing import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0
READY_POLL = 0.05


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to start one `skipline serve`: the flags that matter to a scenario."""

    db: str
    port: int = field(default_factory=free_port)
    workers: int = 3
    handler: str = "faults.handlers:record"
    lease_seconds: float = 2.0
    drain_timeout: float = 5.0
    flags: tuple[str, ...] = ()
    """Further command-line flags, e.g. ("--max-attempts", "3")."""
    entry: str = "skipline"
    """The module run with `python -m`: skipline itself, or a harness module that plants a bug
    in it first (faults.stale_fence)."""

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", self.entry, "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--db", self.db,
            "--workers", str(self.workers), "--handler", self.handler,
            "--lease-seconds", str(self.lease_seconds),
            "--drain-timeout", str(self.drain_timeout), *self.flags,
        ]


class ServerProcess:
    """One server, restartable; its output goes to `<workdir>/<name>.log`."""

    def __init__(self, config: ServerConfig, workdir: Path, name: str = "server") -> None:
        self.config = config
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.journal_path = workdir / "journal.jsonl"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.config.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def environment(self, fault: str | None) -> dict[str, str]:
        """Our environment without SKIPLINE_* leftovers, plus the journal, the fault point and
        the repository on the path (for `faults.handlers`)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPLINE_")}
        env[journal.JOURNAL_ENV] = str(self.journal_path)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        if fault:
            env["SKIPLINE_FAULT"] = fault
        return env

    async def start(self, fault: str | None = None, ready: bool = True) -> None:
        """Start the server (with a crash point armed when `fault` is given) and, unless told
        otherwise, wait until /readyz answers 200."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1} fault={fault or '-'} at {time.time():.3f}\n"
                      .encode())
            self.process = await asyncio.create_subprocess_exec(
                *self.config.command(), cwd=REPO_ROOT, env=self.environment(fault),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )
        self.starts += 1
        if ready:
            await self.wait_ready()

    async def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:  # noqa: ASYNC109
        """Poll /readyz until it answers 200; raise if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while time.monotonic() < deadline:
                if not self.running:
                    raise RuntimeError(f"{self.name} exited during start; see {self.log_path}")
                try:
                    async with session.get(self.base_url + "/readyz") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(READY_POLL)
        raise RuntimeError(f"{self.name} not ready after {timeout:g} s; see {self.log_path}")

    async def kill(self) -> int:
        """SIGKILL the server and reap it; returns the pid it had."""
        process = self._require()
        pid = process.pid
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
        return pid

    def signal(self, number: signal.Signals) -> None:
        self._require().send_signal(number)

    async def wait_exit(self, timeout: float) -> int | None:  # noqa: ASYNC109
        """The exit code (negative: killed by that signal), or None if still running."""
        process = self._require()
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            return None

    async def stop(self, timeout: float = 30.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM and wait for the drain; SIGKILL if it does not exit in time."""
        if not self.running:
            return None if self.process is None else self.process.returncode
        self.signal(signal.SIGTERM)
        code = await self.wait_exit(timeout)
        if code is None:
            await self.kill()
        return code

    def _require(self) -> asyncio.subprocess.Process:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process
