"""Body limits through raw sockets: a body over the limit (64 KiB by default) is refused with
413 without the server reading, let alone buffering, the rest of it, whether its size is
declared (Content-Length) or not (chunked); `Expect: 100-continue` is answered only once the
request has passed its checks."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.integration.api_harness import (
    PROMPT,
    Api,
    assert_problem,
    raw_connection,
    read_response,
    request_head,
)

LIMIT = 64 * 1024
EIGHT_MIB = 8 * 1024 * 1024


def body_of_size(size: int) -> bytes:
    """A valid order whose JSON is exactly `size` bytes."""
    prefix, suffix = b'{"payload": {"pad": "', b'"}}'
    return prefix + b"a" * (size - len(prefix) - len(suffix)) + suffix


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def post_head(**headers: str) -> bytes:
    return request_head("POST", "/orders", {"Content-Type": "application/json", **headers})


async def test_a_declared_8_mib_body_is_refused_without_reading_it(api: Api) -> None:
    """Only 1 KiB of the declared 8 MiB is ever sent: a prompt 413 proves the server did not
    wait for (so did not read, nor buffer) the rest."""
    started = time.monotonic()
    async with raw_connection(api) as (reader, writer):
        writer.write(post_head(**{"Content-Length": str(EIGHT_MIB)}) + b"{" + b" " * 1023)
        reply = await read_response(reader)
    assert time.monotonic() - started < PROMPT
    assert reply.status == 413
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert str(EIGHT_MIB) in reply.json()["detail"] and str(LIMIT) in reply.json()["detail"]
    assert reply.headers.get("connection", "").lower() == "close"
    assert await api.service.store.queued_counts() == {}
    assert (await api.call("GET", "/healthz")).status == 200


async def test_a_client_that_keeps_sending_8_mib_still_gets_a_prompt_413(api: Api) -> None:
    async with raw_connection(api) as (reader, writer):
        writer.write(post_head(**{"Content-Length": str(EIGHT_MIB)}))

        async def send_everything() -> None:
            block = b" " * 65536
            with contextlib.suppress(ConnectionError):
                for _ in range(EIGHT_MIB // len(block)):
                    writer.write(block)
                    await writer.drain()

        sender = asyncio.create_task(send_everything())
        try:
            reply = await read_response(reader)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    assert reply.status == 413
    assert reply.headers["content-type"].startswith("application/problem+json")


async def test_a_chunked_body_over_the_limit_is_refused_once_the_limit_is_passed(
    api: Api,
) -> None:
    """No final chunk is ever sent: the server must stop at limit + 1 bytes and answer."""
    async with raw_connection(api) as (reader, writer):
        writer.write(post_head(**{"Transfer-Encoding": "chunked"}))
        writer.write(chunk(b'{"payload": {"pad": "'))
        for _ in range(5):
            writer.write(chunk(b"a" * 16384))
        reply = await read_response(reader)
    assert reply.status == 413 and reply.headers["connection"].lower() == "close"
    assert str(LIMIT) in reply.json()["detail"]
    assert await api.service.store.queued_counts() == {}


async def test_a_small_chunked_body_is_accepted(api: Api) -> None:
    async with raw_connection(api) as (reader, writer):
        writer.write(post_head(**{"Transfer-Encoding": "chunked"}))
        writer.write(chunk(b'{"payload": {"k": ') + chunk(b'"v"}}') + b"0\r\n\r\n")
        reply = await read_response(reader)
    assert reply.status == 202
    assert reply.json()["payload"] == {"k": "v"}


async def test_a_body_of_exactly_the_limit_is_accepted(api: Api) -> None:
    body = body_of_size(LIMIT)
    reply = await api.call("POST", "/orders", data=body,
                           headers={"Content-Type": "application/json"})
    assert reply.status == 202
    assert len(reply.json()["payload"]["pad"]) > LIMIT - 100


async def test_one_byte_over_the_limit_is_413(api: Api) -> None:
    body = body_of_size(LIMIT + 1)
    reply = await api.call("POST", "/orders", data=body,
                           headers={"Content-Type": "application/json"})
    assert_problem(reply, 413, str(LIMIT))


async def test_a_refusal_after_the_whole_body_arrived_keeps_the_connection(api: Api) -> None:
    async with raw_connection(api) as (reader, writer):
        for _ in range(2):
            writer.write(post_head(**{"Content-Length": "2", "Authorization": "Bearer no"}) + b"{}")
            reply = await read_response(reader)
            assert reply.status == 401 and reply.headers.get("connection") != "close"


async def test_one_byte_over_the_limit_chunked_is_413(api: Api) -> None:
    body = body_of_size(LIMIT + 1)
    async with raw_connection(api) as (reader, writer):
        writer.write(post_head(**{"Transfer-Encoding": "chunked"}))
        writer.write(chunk(body[:1000]) + chunk(body[1000:]) + b"0\r\n\r\n")
        reply = await read_response(reader)
    assert reply.status == 413


# --- Expect: 100-continue -------------------------------------------------------------------
async def test_100_continue_is_sent_only_to_an_admitted_request(api: Api) -> None:
    key = await api.service.add_key("acme", "vip")
    body = b'{"duration": 2}'
    head = post_head(**{"Content-Length": str(len(body)), "Expect": "100-continue",
                        "Authorization": f"Bearer {key}"})
    async with raw_connection(api) as (reader, writer):
        writer.write(head)
        interim = await read_response(reader)
        assert interim.status == 100
        writer.write(body)
        reply = await read_response(reader)
    assert reply.status == 202 and reply.json()["tier"] == "vip"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": "Bearer sk_wrong"}, 401),
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Length": str(EIGHT_MIB)}, 413),
    ],
)
async def test_a_refused_request_gets_no_100_continue(
    api: Api, headers: dict[str, str], status: int,
) -> None:
    head = post_head(**{"Content-Length": "2", "Expect": "100-continue", **headers})
    async with raw_connection(api) as (reader, writer):
        writer.write(head)
        reply = await read_response(reader)
    assert reply.status == status
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.headers["connection"].lower() == "close"  # the unsent body is never read


async def test_a_draining_service_sends_no_100_continue(api: Api) -> None:
    api.service.accepting = False
    async with raw_connection(api) as (reader, writer):
        writer.write(post_head(**{"Content-Length": "2", "Expect": "100-continue"}))
        reply = await read_response(reader)
    assert reply.status == 503 and int(reply.headers["retry-after"]) >= 1


async def test_an_unknown_expectation_is_417(api: Api) -> None:
    async with raw_connection(api) as (reader, writer):
        writer.write(post_head(**{"Content-Length": "2", "Expect": "telepathy"}) + b"{}")
        reply = await read_response(reader)
    assert reply.status == 417
    assert "telepathy" in reply.json()["detail"]
