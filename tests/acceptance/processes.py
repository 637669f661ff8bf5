"""Real `skipline` processes for acceptance tests, and small HTTP helpers. Each process runs
`python -m skipline` on a free 127.0.0.1 port with a SQLite file in the test's tmp dir, is
awaited on /healthz, and is always killed (and reaped) at teardown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from skipline.testing import free_port

STARTUP_SECONDS = 30.0
CLI_SECONDS = 30.0
FINAL_STATUSES = {"succeeded", "failed", "cancelled"}


def clean_environment() -> dict[str, str]:
    """The test runner's environment without SKIPLINE_* settings, unbuffered output."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SKIPLINE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Server:
    """One running `skipline serve` (or `worker`) process."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, number: signal.Signals) -> None:
        self.process.send_signal(number)

    async def wait_exit(self, within: float) -> int:
        """The exit code, waiting at most `within` seconds (fails the test otherwise)."""
        deadline = time.monotonic() + within
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail(f"skipline (pid {self.pid}) still running after {within} s\n"
                            + self.log_tail())
            await asyncio.sleep(0.05)
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        self.log_file.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def memory_kib(self, field_name: str = "VmRSS") -> int:
        """A memory figure of the process from /proc/<pid>/status, in KiB."""
        status = Path(f"/proc/{self.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{field_name} not in /proc/{self.pid}/status")

    def reset_peak_memory(self) -> bool:
        """Reset VmHWM to the current RSS (Linux clear_refs '5'); False if not allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5", encoding="ascii")
        except OSError:
            return False
        return True

    def stop_now(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.log_file.close()


@dataclass
class Launcher:
    """Starts skipline processes that share one SQLite database; kills them all at teardown."""

    workdir: Path
    servers: list[Server] = field(default_factory=list)

    @property
    def db(self) -> str:
        return f"sqlite:///{self.workdir / 'skipline.db'}"

    def start(self, *args: str, command: str = "serve", port: int | None = None) -> Server:
        """Start a process without waiting for it (`serve` on `port`, default a free one)."""
        port = port or free_port()
        argv = [sys.executable, "-m", "skipline", command, "--db", self.db, *args]
        if command == "serve":
            argv += ["--host", "127.0.0.1", "--port", str(port)]
        log_path = self.workdir / f"skipline-{len(self.servers)}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            argv, cwd=self.workdir, env=clean_environment(),
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        )
        server = Server(process, f"http://127.0.0.1:{port}", log_path, log_file)
        self.servers.append(server)
        return server

    async def serve(self, *args: str, port: int | None = None) -> Server:
        """Start `skipline serve` and return once /healthz answers 200."""
        server = self.start(*args, port=port)
        await wait_healthy(server)
        return server

    async def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a short skipline command (keys, submit…) against the same database."""
        argv = [sys.executable, "-m", "skipline", *args]
        result = await asyncio.to_thread(
            subprocess.run, argv, cwd=self.workdir, env=clean_environment(),
            capture_output=True, text=True, timeout=CLI_SECONDS,
        )
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {result.returncode}: {result.stderr}")
        return result

    async def add_key(self, name: str, tier: str, *extra: str) -> str:
        result = await self.cli("keys", "add", name, "--tier", tier, "--db", self.db, *extra)
        return result.stdout.strip()

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop_now()


class PostgresLauncher(Launcher):
    """A Launcher whose processes all use one PostgreSQL database."""

    def __init__(self, workdir: Path, database_url: str) -> None:
        super().__init__(workdir)
        self.database_url = database_url

    @property
    def db(self) -> str:
        return self.database_url


async def wait_healthy(server: Server, within: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"skipline exited with {server.process.returncode} during startup\n"
                            + server.log_tail())
            try:
                async with session.get(server.url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"skipline did not answer /healthz within {within} s\n" + server.log_tail())


async def wait_logged(server: Server, text: str, within: float = STARTUP_SECONDS) -> None:
    """Wait until the process's log contains `text` (a process without HTTP, such as
    `skipline worker`, says it is ready only there)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if text in server.log_tail(1000):
            return
        if server.process.poll() is not None:
            pytest.fail(f"skipline exited with {server.process.returncode} during startup\n"
                        + server.log_tail())
        await asyncio.sleep(0.05)
    pytest.fail(f"skipline did not log {text!r} within {within} s\n" + server.log_tail())


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


async def post_order(
    http: aiohttp.ClientSession, server: Server, body: dict[str, Any] | None = None,
    key: str | None = None, headers: dict[str, str] | None = None,
) -> Reply:
    """POST /orders; the status, the decoded JSON body and the headers."""
    sent = {**auth(key), **(headers or {})}
    async with http.post(server.url + "/orders", json=body or {}, headers=sent) as response:
        decoded = await response.json(content_type=None)
        return Reply(response.status, decoded, dict(response.headers))


async def accept(
    http: aiohttp.ClientSession, server: Server, body: dict[str, Any], key: str | None = None
) -> str:
    """Submit an order that must be accepted (202); its id."""
    reply = await post_order(http, server, body, key)
    assert reply.status == 202, reply.body
    order_id: str = reply.body["id"]
    return order_id


async def get_order(
    http: aiohttp.ClientSession, server: Server, order_id: str, key: str | None = None
) -> dict[str, Any]:
    async with http.get(f"{server.url}/orders/{order_id}", headers=auth(key)) as response:
        assert response.status == 200, await response.text()
        order: dict[str, Any] = await response.json()
        return order


async def wait_until_final(
    http: aiohttp.ClientSession, server: Server, orders: Sequence[tuple[str, str | None]],
    within: float,
) -> list[dict[str, Any]]:
    """Poll until every (id, key) order is final; the orders in the order given."""
    deadline = time.monotonic() + within
    while True:
        found = [await get_order(http, server, order_id, key) for order_id, key in orders]
        pending = [order["id"] for order in found if order["status"] not in FINAL_STATUSES]
        if not pending:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{len(pending)} order(s) not final after {within} s\n"
                        + server.log_tail())
        await asyncio.sleep(0.2)


async def wait_for_status(
    http: aiohttp.ClientSession, server: Server, order_id: str, status: str,
    key: str | None = None, within: float = 10.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        order = await get_order(http, server, order_id, key)
        if order["status"] == status:
            return order
        if time.monotonic() > deadline:
            pytest.fail(f"order {order_id} is {order['status']}, not {status}, after {within} s")
        await asyncio.sleep(0.05)
