"""POST /orders throughput: `skipline serve` (SQLite, synchronous=FULL) against a bare aiohttp
handler that parses the same JSON and answers 202, measured in the same run with the same load
tool (wrk), each server pinned to one core and wrk to the other. Prints the ratio.

    .venv/bin/python bench/http_submit.py            # 3 rounds of 10 s each
    .venv/bin/python bench/http_submit.py --seconds 5 --rounds 1

Needs `wrk` (installed with apt-get when missing and running as root).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from skipline.testing import free_port

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")
UVLOOP_SKIPLINE = "import uvloop; uvloop.install(); from skipline.cli import main; main()"
BODY = '{"payload": {"item": "book", "quantity": 1}, "duration": 0}'
LUA = f"""
wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Served:
    """One server's timed run: requests/s, and CPU µs per request (see thread_cpu)."""

    rate: float
    cpu_us: dict[str, float]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False,
                       stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is needed: apt-get install wrk")
    return found


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited early with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("server did not become healthy")


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if shutil.which("taskset") else argv


@contextmanager
def server(argv: list[str], port: int, env: dict[str, str] | None = None,
           ) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(pinned(0, argv), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of a process: its main thread (the event loop) and its other threads
    together (the SQLite writer, any executor thread), each as user and system (kernel) time."""
    seconds = {"loop": 0.0, "loop kernel": 0.0, "threads": 0.0, "threads kernel": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        name = "loop" if task.name == str(pid) else "threads"
        seconds[name] += int(fields[11]) / TICKS
        seconds[f"{name} kernel"] += int(fields[12]) / TICKS
    return seconds


def measured(wrk: str, port: int, proc: subprocess.Popen[bytes], args: argparse.Namespace,
             lua: Path) -> Served:
    """A warm-up, then the timed wrk run and the server's CPU per request by thread."""
    run_wrk(wrk, port, 2, args.connections, lua)
    before = thread_cpu(proc.pid)
    rate = run_wrk(wrk, port, args.seconds, args.connections, lua)
    after = thread_cpu(proc.pid)
    requests = rate * args.seconds
    per_request = {name: (after[name] - before.get(name, 0.0)) / requests * 1e6
                   for name in after}
    return Served(rate, per_request)


def cpu_text(served: Served) -> str:
    """`total (loop a, of which kernel b; threads c, of which kernel d)`, µs per request."""
    cpu = served.cpu_us
    parts = [f"{name} {cpu[name] + cpu[name + ' kernel']:.1f} (kernel {cpu[name + ' kernel']:.1f})"
             for name in ("loop", "threads") if cpu[name] + cpu[name + " kernel"] > 0]
    return f"{sum(cpu.values()):.1f} µs: " + ", ".join(parts)


def run_wrk(wrk: str, port: int, seconds: int, connections: int, lua: Path) -> float:
    out = subprocess.run(
        pinned(1, [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(lua),
                   f"http://127.0.0.1:{port}/orders"]),
        capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out:
        sys.exit(f"some requests were not answered 2xx:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        sys.exit(f"could not read wrk output:\n{out}")
    return float(match[1])


def measure_bare(wrk: str, args: argparse.Namespace, lua: Path) -> Served:
    port = free_port()
    argv = [sys.executable, str(HERE / "bare_server.py"), str(port)]
    if args.uvloop:
        argv.append("--uvloop")
    with server(argv, port) as proc:
        return measured(wrk, port, proc, args, lua)


def measure_skipline(wrk: str, args: argparse.Namespace, lua: Path, workdir: Path) -> Served:
    port = free_port()
    db = workdir / f"bench-{port}.db"
    argv = [sys.executable, "-m", "skipline", "serve", "--port", str(port),
            "--db", f"sqlite:///{db}", "--durability", "full"]
    if args.no_workers:
        argv.append("--no-workers")
    if args.uvloop:  # the same command, with uvloop's policy installed first
        argv[1:3] = ["-c", UVLOOP_SKIPLINE]
    with server(argv, port) as proc:
        return measured(wrk, port, proc, args, lua)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-workers", action="store_true",
                        help="run `skipline serve --no-workers` (API only)")
    parser.add_argument("--uvloop", action="store_true",
                        help="both servers on uvloop (the `uvloop` extra)")
    args = parser.parse_args()
    wrk = ensure_wrk()
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "post.lua"
        lua.write_text(LUA)
        for round_number in range(1, args.rounds + 1):
            bare = measure_bare(wrk, args, lua)
            ours = measure_skipline(wrk, args, lua, Path(tmp))
            ratios.append(ours.rate / bare.rate)
            print(f"round {round_number}: bare aiohttp {bare.rate:,.0f} req/s   "
                  f"skipline serve (SQLite FULL) {ours.rate:,.0f} req/s   "
                  f"ratio {ours.rate / bare.rate:.2f}")
            print(f"  CPU per request: bare {cpu_text(bare)}")
            print(f"                   skipline {cpu_text(ours)}")
    print(f"ratio skipline/bare (median of {len(ratios)}): {statistics.median(ratios):.2f}"
          f"   target >= 0.80")


if __name__ == "__main__":
    main()
