"""The partition proxy against a real echo server on 127.0.0.1: it forwards both ways, holds
traffic in a blackholed direction without closing anything (and delivers it on healing), delays
by its latency, and resets on a cut. Fast: a second or so in all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from faults.partition import Direction, PartitionProxy

SILENCE = 0.3
"""How long a blackholed connection is watched for a byte that must not come."""


class Echo:
    """An echo server that also keeps what it received."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.port = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            self.received += data
            writer.write(data)
            await writer.drain()
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[PartitionProxy, Echo]]:
    echo = Echo()
    server = await asyncio.start_server(echo.serve, "127.0.0.1", 0)
    echo.port = server.sockets[0].getsockname()[1]
    proxy = PartitionProxy("127.0.0.1", echo.port, seed=1)
    await proxy.start()
    yield proxy, echo
    await proxy.stop()
    server.close()
    await server.wait_closed()


async def connect(proxy: PartitionProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     data: bytes, timeout: float = 2.0) -> bytes:  # noqa: ASYNC109
    writer.write(data)
    return await asyncio.wait_for(reader.readexactly(len(data)), timeout)


async def test_forwards_both_ways(proxy: tuple[PartitionProxy, Echo]) -> None:
    gateway, echo = proxy
    reader, writer = await connect(gateway)
    assert await round_trip(reader, writer, b"hello") == b"hello"
    assert echo.received == b"hello"
    assert gateway.open_connections == 1
    writer.close()


async def test_a_blackhole_holds_traffic_without_closing_and_heal_delivers_it(
    proxy: tuple[PartitionProxy, Echo],
) -> None:
    gateway, echo = proxy
    reader, writer = await connect(gateway)
    await round_trip(reader, writer, b"a")
    gateway.blackhole()
    writer.write(b"lost?")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), SILENCE)
    assert echo.received == b"a"  # nothing reached the server
    assert not reader.at_eof() and gateway.open_connections == 1
    gateway.heal()
    assert await asyncio.wait_for(reader.readexactly(5), 2) == b"lost?"
    writer.close()


async def test_one_way_blackhole_lets_requests_in_but_no_answer_out(
    proxy: tuple[PartitionProxy, Echo],
) -> None:
    gateway, echo = proxy
    reader, writer = await connect(gateway)
    await round_trip(reader, writer, b"a")
    gateway.blackhole([Direction.DOWN])
    writer.write(b"req")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), SILENCE)
    assert echo.received == b"areq"
    gateway.heal()
    assert await asyncio.wait_for(reader.readexactly(3), 2) == b"req"
    writer.close()


async def test_a_connection_opened_during_a_blackhole_waits_for_the_heal(
    proxy: tuple[PartitionProxy, Echo],
) -> None:
    gateway, echo = proxy
    gateway.blackhole()
    reader, writer = await connect(gateway)  # the local accept succeeds, nothing else
    writer.write(b"early")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), SILENCE)
    assert echo.received == b""
    gateway.heal()
    assert await asyncio.wait_for(reader.readexactly(5), 2) == b"early"
    writer.close()


async def test_latency_delays_each_way_and_keeps_order(proxy: tuple[PartitionProxy, Echo]) -> None:
    gateway, _ = proxy
    reader, writer = await connect(gateway)
    await round_trip(reader, writer, b"warm")
    gateway.slow(0.05, 0.1)
    started = time.monotonic()
    for index in range(5):
        writer.write(bytes([65 + index]))
    got = await asyncio.wait_for(reader.readexactly(5), 2)
    elapsed = time.monotonic() - started
    assert got == b"ABCDE"
    assert 0.1 <= elapsed < 1.0  # two one-way delays of 50-100 ms, not five round trips
    gateway.heal()
    started = time.monotonic()
    await round_trip(reader, writer, b"x")
    assert time.monotonic() - started < 0.05
    writer.close()


async def test_a_cut_resets_open_and_new_connections_until_healed(
    proxy: tuple[PartitionProxy, Echo],
) -> None:
    gateway, _ = proxy
    reader, writer = await connect(gateway)
    await round_trip(reader, writer, b"a")
    gateway.cut()
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(1), 2)
    reader2, writer2 = await connect(gateway)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader2.read(1), 2)
    gateway.heal()
    reader3, writer3 = await connect(gateway)
    assert await round_trip(reader3, writer3, b"back") == b"back"
    for each in (writer, writer2, writer3):
        each.close()


def test_the_url_keeps_everything_but_host_and_port() -> None:
    gateway = PartitionProxy("127.0.0.1", 5432)
    gateway.port = 40000
    assert gateway.url_through("postgresql://u:p@db.example:5432/test?sslmode=disable") == (
        "postgresql://u:p@127.0.0.1:40000/test?sslmode=disable")
    assert gateway.url_through("postgresql://127.0.0.1/x") == "postgresql://127.0.0.1:40000/x"
