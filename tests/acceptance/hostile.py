"""Hostile requests as exact bytes: a running `skipline serve` per store kind (SQLite, and
PostgreSQL on a database of its own), and a raw exchange over a standard-library socket, so
no client library can normalise (or refuse to send) what a hostile client would."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from skipline.testing import free_port
from tests.acceptance.processes import Server, clean_environment
from tests.integration.api_harness import RawReply

READ_SECONDS = 5.0
"""A refusal must arrive within this."""
HEAD_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEPALIVE_TIMEOUT = 2.0
SHORT_LIMITS = (
    "--head-timeout", str(HEAD_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
    "--keepalive-timeout", str(KEEPALIVE_TIMEOUT),
)


@dataclass
class Target:
    """A running server and what the tests need to talk to it."""

    server: Server
    db: str
    workdir: Path
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])

    def log(self) -> str:
        self.server.log_file.flush()
        return self.server.log_path.read_text(encoding="utf-8", errors="replace")


def connect(target: Target, timeout: float = READ_SECONDS) -> socket.socket:
    return socket.create_connection(("127.0.0.1", target.port), timeout=timeout)


def read_reply(sock: socket.socket) -> RawReply:
    """One response off the socket (Content-Length bodies: every skipline answer has one)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole response head: {buffer!r}")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return RawReply(int(lines[0].split(" ")[1]), headers, rest[:length])


def exchange(target: Target, raw: bytes) -> RawReply:
    """Send `raw` as it is on a new connection and read the answer."""
    with connect(target) as sock:
        sock.sendall(raw)
        return read_reply(sock)


def head(method: str, path: str, *lines: bytes | str) -> bytes:
    """A request head from exact lines (bytes are sent untouched)."""
    parts = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    parts += [line if isinstance(line, bytes) else line.encode("latin-1") for line in lines]
    return b"\r\n".join(parts) + b"\r\n\r\n"


def json_post(body: bytes, *lines: bytes | str, path: str = "/orders") -> bytes:
    return head("POST", path, "Content-Type: application/json",
                f"Content-Length: {len(body)}", *lines) + body


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """(whether the server closed the connection within `seconds`, what it sent first)."""
    sock.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return True, received
            received += chunk
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        return True, received
    return False, received


# --- processes ---------------------------------------------------------------------------------
def run_cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skipline", *args], cwd=workdir, env=clean_environment(),
        capture_output=True, text=True, timeout=60,
    )


def add_key(workdir: Path, db: str, name: str, tier: str) -> str:
    result = run_cli(workdir, "keys", "add", name, "--tier", tier, "--db", db)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@contextmanager
def serving(workdir: Path, db: str, *args: str) -> Iterator[Server]:
    """`skipline serve` on a free port of 127.0.0.1, awaited on /healthz, killed afterwards."""
    port = free_port()
    log_path = workdir / f"serve-{port}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "skipline", "serve", "--db", db, "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", *args],
        cwd=workdir, env=clean_environment(), stdin=subprocess.DEVNULL, stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    server = Server(process, f"http://127.0.0.1:{port}", log_path, log_file)
    try:
        wait_until_healthy(server, port)
        yield server
    finally:
        server.stop_now()


def wait_until_healthy(server: Server, port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"skipline exited with {server.process.returncode}\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(head("GET", "/healthz", "Connection: close"))
                if read_reply(sock).status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"skipline did not answer /healthz within {within} s\n{server.log_tail()}")
