"""Reading a request body safely: the media type and the content coding are checked first,
never more than the limit plus one byte is read, whatever Content-Length says (or when it is
absent), and a body that does not arrive within the body timeout is refused (408)."""

from __future__ import annotations

import asyncio

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11
from aiohttp.http_exceptions import PayloadEncodingError

from skipline.api import problems
from skipline.api.appkeys import SERVICE
from skipline.api.errors import (
    BodyTooLarge,
    RequestTimeout,
    UndecodableBody,
    UnsupportedContentEncoding,
    UnsupportedExpectation,
    UnsupportedMediaType,
)

JSON_MEDIA_TYPE = "application/json"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BROKEN_BODY = (web.RequestPayloadError, PayloadEncodingError)
"""How aiohttp reports a body it could not decode (the second with older parsers)."""
DECODED_CODINGS = frozenset({"gzip", "deflate", "identity"})
"""Content codings aiohttp decodes for us (identity: none); any other would be read as if it
were plain JSON, so it is refused instead."""


def require_json(request: web.Request) -> None:
    """415 unless the body is declared as UTF-8 JSON (a charset parameter is allowed)."""
    charset = request.charset
    if request.content_type != JSON_MEDIA_TYPE or (
        charset is not None and charset.lower() not in ("utf-8", "utf8")
    ):
        declared = request.headers.get("Content-Type", "none")
        raise UnsupportedMediaType(
            f"Content-Type must be {JSON_MEDIA_TYPE} (UTF-8), got {declared!r}"
        )
    require_known_coding(request)


def require_known_coding(request: web.Request) -> None:
    """415 for a Content-Encoding other than one gzip, deflate or identity."""
    values = request.headers.getall(hdrs.CONTENT_ENCODING, [])
    codings = [coding.strip().lower() for value in values for coding in value.split(",")]
    if codings and (len(codings) > 1 or codings[0] not in DECODED_CODINGS):
        shown = ", ".join(values)[:80]
        raise UnsupportedContentEncoding(
            f"Content-Encoding {shown!r} is not supported; use one of gzip, deflate, identity"
        )


def require_size(request: web.Request, limit: int) -> None:
    """413 straight from Content-Length, before a single body byte is read."""
    length = request.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(f"the body is {length} bytes; the limit is {limit}")


def body_if_arrived(request: web.Request, limit: int) -> bytes | None:
    """The whole body when it has already arrived and nobody waits for `100 Continue` (the
    usual case), taken without a coroutine; None otherwise (then use read_limited)."""
    content = request.content
    if not content.is_eof() or hdrs.EXPECT in request.headers:
        return None
    try:
        body = content.read_nowait()
    except BROKEN_BODY:
        raise undecodable(request) from None
    if len(body) > limit:
        raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    return body


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than `limit` bytes have arrived;
    RequestTimeout when it has not all arrived within the body timeout."""
    timeout = request.app[SERVICE].settings.body_timeout
    try:
        async with asyncio.timeout(timeout):
            await send_continue(request)
            return await _read_up_to(request, limit)
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout:g} s") from None
    except BROKEN_BODY:
        raise undecodable(request) from None


async def _read_up_to(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    return b"".join(chunks)


def undecodable(request: web.Request) -> UndecodableBody:
    """aiohttp could not decode the body (a gzip body that is not gzip, a broken chunk). The
    body is given up for read (else aiohttp would try to read the rest after the answer, hit
    the same error and log it) and the connection is closed after the 400 (middleware.py)."""
    request.content.feed_eof()
    return UndecodableBody(
        "the body could not be decoded as its Content-Encoding and Transfer-Encoding say"
    )


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """Defer `100 Continue` until the request has passed its checks (see send_continue).
    This runs before the middlewares, so it renders its own problem."""
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11 and expect.lower() != "100-continue":
        return problems.from_error(UnsupportedExpectation(f"unsupported Expect: {expect!r}"))
    return None


async def send_continue(request: web.Request) -> None:
    """Invite the client to send its body only now that we mean to read it."""
    expect = request.headers.get("Expect", "")
    if request.version == HttpVersion11 and expect.lower() == "100-continue":
        await request.writer.write(CONTINUE)
        request.writer.output_size = 0  # the interim response is not part of the response body
