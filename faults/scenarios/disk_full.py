"""Disk full on SQLite, for real: the database lives on a small tmpfs that a filler file fills
to the last byte under load. While it is full, a submission must be refused (503) rather than
acknowledged and lost; once the filler is removed the same process must accept again, and the
database must pass `PRAGMA integrity_check`.

Why a real full filesystem rather than `PRAGMA max_page_count`: the page cap only stops the main
database file from growing, while a real disk also refuses WAL appends, checkpoints and the
-shm file; and a cap would need a test-only setting in production code. Mounting needs root
(CAP_SYS_ADMIN); without it the scenario says it is unsupported instead of pretending.
"""

from __future__ import annotations

import asyncio
import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from faults.checker import Report
from faults.client import OrderShape
from faults.process import ServerConfig
from faults.scenario import finished, scenario, statuses_between, under_load, wait_for_acks


class Unsupported(Exception):
    """This machine cannot run the scenario (here: no permission to mount a tmpfs)."""


@dataclass(frozen=True, slots=True)
class DiskFull:
    size_mb: int = 16
    full_seconds: float = 4.0
    rounds: int = 1
    settle_seconds: float = 6.0
    """Pause after each round, longer than the worker's longest store-retry pause (5 s), so
    one round's recovery is measured apart from the next round's fault."""
    workers: int = 4
    clients: int = 4
    longest_full_seconds: float = 30.0
    """The disk stays full past `full_seconds` until a submission is refused, at most this
    long (see keep_full)."""


SHORT = DiskFull(settle_seconds=0.0)
LONG = DiskFull(rounds=3, full_seconds=6.0, size_mb=64)
"""64 MiB: three rounds of load write more than 16 MiB of orders, and a disk the database
filled by itself stays full once the filler is gone (nothing to recover to)."""
SHAPE = OrderShape(min_duration=0.0, max_duration=0.1, payload={"pad": "x" * 400})
"""Padded payloads, so the database grows and the full disk is felt quickly."""


@contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    """A private tmpfs of `size_mb` MiB at `path`, unmounted on the way out."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )
    if mounted.returncode != 0:
        raise Unsupported(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(path: Path) -> int:
    """Append to `path` until the filesystem refuses another byte; returns the bytes written."""
    written = 0
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written += os.write(descriptor, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(descriptor)
    return written


async def keep_full(
    filler: Path, seconds: float, bitten: Callable[[], bool], longest: float,
) -> None:
    """Fill the disk and keep it full for `seconds`, and longer (up to `longest`) until
    `bitten()` says the fault was felt. SQLite frees space now and then (a WAL reset or
    truncation), and a disk that is full only until then is not full. And a full disk is not
    felt at once: after a checkpoint the WAL is rewritten from its start, in space it already
    has, so commits go on, durably, until the WAL must grow (or the database file must)."""
    started = time.monotonic()
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= longest or (elapsed >= seconds and bitten()):
            return
        await asyncio.to_thread(fill, filler)
        await asyncio.sleep(0.02)


def integrity(db_path: Path) -> str:
    with sqlite3.connect(db_path) as connection:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(row[0]) for row in rows)


async def run(params: DiskFull = SHORT) -> Report:
    async with scenario("sqlite_disk_full") as context:
        with tmpfs(context.workdir / "disk", params.size_mb) as disk:
            db = context.sqlite_url(disk)
            server = context.server(ServerConfig(db, workers=params.workers))
            await server.start()
            windows, resumed = [], []
            async with under_load(context, params.clients, SHAPE):
                for _ in range(params.rounds):
                    await wait_for_acks(context.history, 30, timeout=15)
                    filler = disk / "filler"
                    full_at = context.history.fault("disk_full").at

                    def refused_since_full(since: float = full_at) -> bool:
                        window = statuses_between(context.history, since, time.time())
                        return bool(window.get("refused_503"))

                    await keep_full(filler, params.full_seconds, refused_since_full,
                                    params.longest_full_seconds)
                    filler.unlink()
                    windows.append(statuses_between(context.history, full_at, time.time()))
                    resumed.append(await wait_for_acks(context.history, 20, timeout=20))
                    await asyncio.sleep(params.settle_seconds)
            survived = server.running and server.starts == 1
            report = await context.finish(db)
            check_db = integrity(disk / "orders.db")
        report.expect("refused_503_while_full", all(w.get("refused_503") for w in windows), windows)
        report.expect("same_process_survived", survived, survived)
        report.expect("resumed_after_space_returned", all(resumed), resumed)
        report.expect("integrity_check", check_db == "ok", check_db)
        return finished(report)
