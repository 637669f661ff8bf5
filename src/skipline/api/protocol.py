"""Problem+json for the requests aiohttp rejects before any application code runs.

A malformed request line, an invalid header or one over aiohttp's size limits never reaches
the app or its middlewares: aiohttp's connection handler answers it itself, in plain text.
Every bad input must still get an `application/problem+json` body that says what is wrong, so
the server's connection handler is swapped for one that renders those answers with
problems.render. Only 4xx answers change; anything else keeps aiohttp's own handling.

aiohttp has no public hook for this: the runner's server is re-classed to a Server subclass
whose only difference is the handler class it builds (tests/integration/test_api_protocol.py
sends real malformed requests through a socket, so an aiohttp change that breaks this fails
there).
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_request import BaseRequest

from skipline.api.problems import render

log = logging.getLogger(__name__)


class ProblemRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, with 4xx protocol errors rendered as problems."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not 400 <= status < 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        log.debug("rejected a malformed request from %s: %s", request.remote, exc or message)
        phrase = _phrase(status)
        detail = f"Malformed HTTP request: {_detail(exc, message) or 'it could not be parsed'}"
        response = render(status, "about:blank", phrase, detail)
        response.force_close()
        return response


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Bad Request"


def _detail(exc: BaseException | None, message: str | None) -> str:
    """aiohttp's own words for what was wrong (its messages name the limit or the byte)."""
    text = message or ""
    if exc is not None:
        text = getattr(exc, "message", "") or str(exc) or text
    return " ".join(str(text).split())[:500]


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
