"""A TCP proxy of our own between a skipline process and PostgreSQL, so a scenario can break the
network the way networks break: packets vanish, or arrive late, or connections are reset.

Each process gets its own proxy and reaches the database through it with its ordinary `--db`
URL (`url_through`). On command the proxy
- blackholes one direction or both (`blackhole`): nothing more is delivered that way, and no
  socket is closed, so both ends see silence, not an error. What was sent meanwhile is held and
  delivered after `heal`, in order, as TCP's retransmissions would once a partition ends; a
  connection either end closed meanwhile is closed after its held bytes are delivered;
- adds latency with jitter (`slow`): every chunk is delivered a random delay later, in the
  order sent (a one-way delay: throughput is not capped);
- cuts (`cut`): every open connection is reset (RST, not FIN), and new ones are reset on
  arrival, until `heal`;
- heals (`heal`): all of the above ends; held bytes flow at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

CHUNK = 65536
RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on with a zero timeout: close() sends RST instead of FIN."""


class Direction(StrEnum):
    UP = "up"
    """From the skipline process to the database."""
    DOWN = "down"
    """From the database back to the process."""


BOTH = (Direction.UP, Direction.DOWN)


@dataclass(slots=True)
class Gate:
    """One direction's state: open or blackholed, and its delay range."""

    open: asyncio.Event = field(default_factory=asyncio.Event)
    latency: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        self.open.set()


class Link:
    """One proxied connection: two pumps, one per direction."""

    def __init__(self, proxy: PartitionProxy, client: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = client
        self.server: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.server) if w is not None]

    def reset(self) -> None:
        for writer in self.writers():
            reset(writer)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: the other end gets ECONNRESET, as from a network that cut it."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
    writer.transport.abort()


class PartitionProxy:
    """Listens on 127.0.0.1 (a free port) and forwards every connection to `target`."""

    def __init__(self, target_host: str, target_port: int, seed: int = 0) -> None:
        self.target = (target_host, target_port)
        self.gates = {direction: Gate() for direction in Direction}
        self.cutting = False
        self.stopping = False
        self.links: set[Link] = set()
        self.accepted = 0
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self.port = 0

    @classmethod
    async def to_url(cls, db_url: str, seed: int = 0) -> PartitionProxy:
        """A started proxy in front of the database `db_url` names."""
        parts = urlsplit(db_url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 5432, seed)
        await proxy.start()
        return proxy

    def url_through(self, db_url: str) -> str:
        """`db_url` with its host and port replaced by this proxy's."""
        parts = urlsplit(db_url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{self.port}"))

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Stop listening and reset whatever is still connected."""
        self.stopping = True
        self.heal()  # frees connections still waiting for a partition to end
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.reset()
            for task in link.tasks:
                task.cancel()
        tasks = [task for link in self.links for task in link.tasks]
        await asyncio.gather(*tasks, return_exceptions=True)
        self.links.clear()
        if self._server is not None:
            await self._server.wait_closed()

    # --- faults -------------------------------------------------------------------------
    def blackhole(self, directions: Iterable[Direction] = BOTH) -> None:
        for direction in directions:
            self.gates[direction].open.clear()

    def slow(self, low: float, high: float | None = None) -> None:
        """Every chunk, both ways, delivered uniform(low, high) seconds late (high: low)."""
        for gate in self.gates.values():
            gate.latency = (low, low if high is None else high)

    def cut(self) -> None:
        """Reset every connection now, and every new one until `heal`."""
        self.cutting = True
        for link in list(self.links):
            link.reset()

    def heal(self) -> None:
        self.cutting = False
        for gate in self.gates.values():
            gate.latency = (0.0, 0.0)
            gate.open.set()

    @property
    def open_connections(self) -> int:
        return len(self.links)

    # --- forwarding -----------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.cutting:
            reset(writer)
            return
        link = Link(self, writer)
        self.links.add(link)
        try:
            # A connection made during a partition reaches the database only once it heals.
            await self.gates[Direction.UP].open.wait()
            if self.stopping:
                return
            server_reader, link.server = await asyncio.open_connection(*self.target)
            link.tasks = [
                asyncio.create_task(self._pump(reader, link.server, Direction.UP)),
                asyncio.create_task(self._pump(server_reader, writer, Direction.DOWN)),
            ]
            done, _ = await asyncio.wait(link.tasks, return_when=asyncio.FIRST_EXCEPTION)
            if any(not t.cancelled() and t.exception() is not None for t in done):
                link.reset()
            await asyncio.gather(*link.tasks, return_exceptions=True)
        except OSError:
            link.reset()
        finally:
            self.links.discard(link)
            for target in link.writers():
                target.close()

    async def _pump(self, source: asyncio.StreamReader, target: asyncio.StreamWriter,
                    direction: Direction) -> None:
        """Read, hold while blackholed, delay, write; in order. A delivery queue lets reading
        go on during a delay (latency, not a throughput cap) but not during a blackhole. An
        error either side ends both (the task group cancels the other)."""
        gate = self.gates[direction]
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._read(source, queue, gate))
            group.create_task(self._deliver(queue, target, gate))

    async def _read(self, source: asyncio.StreamReader,
                    queue: asyncio.Queue[tuple[float, bytes]], gate: Gate) -> None:
        last = 0.0
        while True:
            await gate.open.wait()
            data = await source.read(CHUNK)
            low, high = gate.latency
            last = max(last, time.monotonic() + self._rng.uniform(low, high))
            queue.put_nowait((last, data))
            if not data:
                return

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes]],
                       target: asyncio.StreamWriter, gate: Gate) -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await gate.open.wait()
            if not data:
                with contextlib.suppress(OSError):
                    target.write_eof()
                return
            target.write(data)
            await target.drain()
