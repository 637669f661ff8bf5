"""Problem+json for the requests aiohttp rejects before any application code runs.

A malformed request line, an invalid header or one over aiohttp's size limits never reaches
the app or its middlewares: aiohttp's connection handler answers it itself, in plain text.
Every bad input must still get an `application/problem+json` body that says what is wrong, so
the server's connection handler is swapped for one that renders those answers with
problems.render. Only 4xx answers change; anything else keeps aiohttp's own handling.

The same handler bounds slow clients: a request head must arrive whole within the head
timeout, counted from the connection's start or from the first byte after a response (then a
408 problem, or nothing if not a byte came, and the connection is closed); idle keep-alive
connections are aiohttp's `keepalive_timeout`, and bodies are bounded where they are read
(body.py).

aiohttp has no public hook for any of this: the runner's server is re-classed to a Server
subclass whose only difference is the handler class it builds, and that handler reads two of
aiohttp's private attributes to tell "waiting for a head" from "serving a request"
(tests/integration/test_api_protocol.py and tests/acceptance/test_hostile_input.py send real
malformed and slow requests through sockets, so an aiohttp change that breaks this fails there).
"""

from __future__ import annotations

import asyncio
import logging
import re
from http import HTTPStatus
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.web_request import BaseRequest

from skipline.api.errors import RequestTimeout
from skipline.api.headers import harden, raw_header_lines
from skipline.api.problems import (
    PROBLEM_CONTENT_TYPE,
    PROBLEM_TYPES,
    TYPE_PREFIX,
    render,
    title_of,
)
from skipline.api.schemas import Problem

log = logging.getLogger(__name__)

SUMMARY = re.compile(r"[A-Za-z][A-Za-z0-9 ,.()_-]*")
"""What of aiohttp's message may be repeated: its leading words, never the request's bytes
(which it quotes after them, an Authorization line with its key included)."""


class ProblemRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, with 4xx protocol errors rendered as problems and a
    deadline for request heads."""

    def __init__(self, *args: Any, head_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_begun = False
        """A byte of the awaited head has arrived (a silent connection gets no 408)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_head():
            self._stop_head_timer()
            return
        self._head_begun = True
        if self._head_timer is None:
            self._start_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        """No request is being served and none waits parsed: arriving bytes are a new head."""
        return not self._request_in_progress and not self._messages

    def _start_head_timer(self) -> None:
        if self._head_timeout is not None:
            self._head_timer = self._loop.call_later(self._head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._head_begun = False

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport is None or not self._awaiting_head():
            return
        if self._head_begun:
            self.transport.write(head_timeout_response(self._head_timeout or 0.0))
        log.debug("closed a connection whose request head did not arrive in time")
        self.force_close()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not 400 <= status < 500 or request.writer.output_size > 0:
            response = super().handle_error(request, status, exc, message)
            harden(response)
            return response
        detail = f"Malformed HTTP request: {_detail(exc, message) or 'it could not be parsed'}"
        log.debug("rejected a malformed request from %s: %s", request.remote, detail)
        response = render(status, "about:blank", _phrase(status), detail)
        harden(response)
        response.force_close()
        return response


def head_timeout_response(timeout: float) -> bytes:
    """A whole 408 problem response, written straight to the transport (there is no request
    to answer through aiohttp)."""
    kind = PROBLEM_TYPES[RequestTimeout]
    body = msgspec.json.encode(Problem(
        TYPE_PREFIX + kind.slug, title_of(RequestTimeout), kind.status,
        f"the request head did not arrive within {timeout:g} s",
    ))
    head = (
        f"HTTP/1.1 {kind.status} {_phrase(kind.status)}\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n"
    ).encode()
    return head + raw_header_lines() + b"\r\n" + body


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Bad Request"


def _detail(exc: BaseException | None, message: str | None) -> str:
    """aiohttp's own words for what was wrong (its messages name the limit or the fault),
    without the bytes it quotes: empty when nothing is left."""
    text = message or ""
    if exc is not None:
        text = getattr(exc, "message", "") or str(exc) or text
    found = SUMMARY.match(str(text).strip())
    return found.group().strip()[:200] if found else ""


class ProblemServer(web.Server):
    """aiohttp's Server, building ProblemRequestHandler connections."""

    def __call__(self) -> web.RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """An AppRunner whose connections answer protocol errors with problems."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = ProblemServer
        return server
