"""What 10,000 concurrent `GET /orders/{id}?wait=S` requests cost one skipline process (the
target in the README: < 200 MB RSS and no busy CPU while they wait).

    .venv/bin/python bench/wait_many.py                      # 10,000 waiters, SQLite
    .venv/bin/python bench/wait_many.py --cancel-from other-process   # SQLite, split processes
    .venv/bin/python bench/wait_many.py --waiters 2000 --db postgresql://127.0.0.1/skipline_bench

A real `skipline serve --no-workers` on 127.0.0.1 (a SQLite file in a temporary folder unless
`--db` is given), `--waiters` orders submitted through it, then one long-poll request per order
held open by this process (one connection each). Reported: the server's RSS before and while
they wait, its CPU seconds over `--idle` seconds of waiting (a busy loop would show here), and
once every order is cancelled, how long until every waiter has its answer. The orders are
cancelled through the server (`DELETE`), or with `--cancel-from other-process` (SQLite only)
through a store this process opens on the same file: the server then learns of the finishes
only by its look at the file and a batched read of the waited ids, as it does when a separate
`skipline worker` finishes them; the server's CPU during that phase is reported too. Bounded:
every request has a timeout and the server is killed at the end whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from skipline.clock import SystemClock
from skipline.store import sqlite_path
from skipline.store.sqlite import SqliteStore
from skipline.testing import free_port

STARTUP_SECONDS = 30.0
WAIT_SECONDS = 60
"""Each waiter's `wait`: longer than the measurement, so none returns on its own."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def start_server(db: str, port: int, folder: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "skipline", "serve", "--no-workers", "--db", db,
            "--host", "127.0.0.1", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKIPLINE_")}
    log = (folder / "server.log").open("wb")
    return subprocess.Popen(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_healthy(http: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            async with http.get(url + "/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


async def submit_all(http: aiohttp.ClientSession, url: str, count: int) -> list[str]:
    async def one(_: int) -> str:
        async with http.post(url + "/orders", json={"duration": 1}) as response:
            body = await response.json()
            return str(body["id"])

    ids: list[str] = []
    for start in range(0, count, 500):
        ids += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 500))))
    return ids


async def cancel_through_server(url: str, ids: list[str]) -> None:
    async with aiohttp.ClientSession() as canceller:
        for start in range(0, len(ids), 200):
            await asyncio.gather(*(canceller.delete(f"{url}/orders/{order_id}")
                                   for order_id in ids[start:start + 200]))


async def cancel_from_this_process(db: str, ids: list[str]) -> None:
    """Through a store of this process on the server's file: 200 cancels share a commit."""
    store = SqliteStore(sqlite_path(db), SystemClock())
    await store.open()
    try:
        for start in range(0, len(ids), 200):
            await asyncio.gather(*(store.cancel(order_id) for order_id in ids[start:start + 200]))
    finally:
        await store.close()


async def measure(db: str, waiters: int, idle: float, folder: Path, other_process: bool) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(db, port, folder)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=WAIT_SECONDS + 30)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            await wait_healthy(http, url)
            ids = await submit_all(http, url, waiters)
            rss_before = rss_mib(server.pid)
            answered = 0

            async def wait_one(order_id: str) -> None:
                nonlocal answered
                path = f"{url}/orders/{order_id}?wait={WAIT_SECONDS}"
                async with http.get(path) as response:
                    await response.read()
                    answered += response.status == 200

            tasks = [asyncio.create_task(wait_one(order_id)) for order_id in ids]
            await asyncio.sleep(max(5.0, waiters / 1000))  # every request reaches the server
            rss_waiting = rss_mib(server.pid)
            cpu_start = cpu_seconds(server.pid)
            await asyncio.sleep(idle)
            cpu_idle = cpu_seconds(server.pid) - cpu_start
            rss_waiting = max(rss_waiting, rss_mib(server.pid))
            early = sum(task.done() for task in tasks)
            started, cpu_start = time.monotonic(), cpu_seconds(server.pid)
            if other_process:
                await cancel_from_this_process(db, ids)
            else:
                await cancel_through_server(url, ids)
            await asyncio.wait_for(asyncio.gather(*tasks), WAIT_SECONDS)
            woken = time.monotonic() - started
            cpu_woken = cpu_seconds(server.pid) - cpu_start
    finally:
        server.kill()
        server.wait(timeout=10)
    print(f"waiters: {waiters} ({db.split(':')[0]}), answered early: {early}")
    print(f"server RSS: {rss_before:.1f} MiB before, {rss_waiting:.1f} MiB while waiting "
          f"({(rss_waiting - rss_before) * 1024 / waiters:.1f} KiB per waiter)")
    print(f"server CPU while {waiters} wait for {idle:g} s: {cpu_idle:.2f} s "
          f"({100 * cpu_idle / idle:.1f} % of one core)")
    print(f"cancel all ({'from another process' if other_process else 'through the server'}),"
          f" every waiter answered 200: {answered == waiters}, in {woken:.2f} s"
          f" (server CPU {cpu_woken:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of waiting measured")
    parser.add_argument("--db", default=None, help="default: a SQLite file in a temp folder")
    parser.add_argument("--cancel-from", choices=("server", "other-process"), default="server")
    args = parser.parse_args()
    other_process = args.cancel_from == "other-process"
    if other_process and args.db is not None and not args.db.startswith("sqlite:"):
        parser.error("--cancel-from other-process is for SQLite (PostgreSQL: LISTEN/NOTIFY)")
    with tempfile.TemporaryDirectory() as folder:
        db = args.db or f"sqlite:///{Path(folder) / 'wait.db'}"
        asyncio.run(measure(db, args.waiters, args.idle, Path(folder), other_process))


if __name__ == "__main__":
    main()
