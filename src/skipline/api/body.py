"""Reading a request body safely: the media type is checked first, and never more than the
limit plus one byte is read, whatever Content-Length says (or when it is absent)."""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.http import HttpVersion11

from skipline.api import problems
from skipline.api.errors import (
    BodyTooLarge,
    UnsupportedExpectation,
    UnsupportedMediaType,
)

JSON_MEDIA_TYPE = "application/json"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


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
    body = content.read_nowait()
    if len(body) > limit:
        raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    return body


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as more than `limit` bytes have arrived."""
    await send_continue(request)
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    return b"".join(chunks)


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
