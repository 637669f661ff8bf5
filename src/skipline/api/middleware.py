"""The one middleware: metrics (sees the final status), errors (turns every failure into a
problem; adds the security headers) and authentication (puts the Caller on the request), in
that order from the outside in. They are one layer rather than three because each aiohttp
middleware costs a coroutine, a partial and a frame on every request, which on POST /orders
was a measurable share of the time."""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from skipline.api import problems
from skipline.api.appkeys import CALLER, METRICS, SERVICE
from skipline.api.headers import harden
from skipline.domain.errors import NotAuthenticated, SkiplineError
from skipline.domain.models import Caller

log = logging.getLogger("skipline.api")

SUMMARY_RESOURCES = frozenset({"stats", "stats-queues", "stats-history"})
"""The dashboard's summary: a key is checked when one is sent (its handlers decide what an
admin sees), and without one the caller is anonymous even where anonymous orders are refused."""
AUTHENTICATED_RESOURCES = (
    frozenset({"orders", "order", "order-retry", "workers"}) | SUMMARY_RESOURCES)
"""Resource names whose handlers act for a caller; the rest (health, docs) are open."""
UNMATCHED = "unmatched"
"""The route label of requests that matched no route (404, 405)."""
CLIENT_GONE = 499
"""Status recorded when the client went away mid-request (nginx's convention)."""


@web.middleware
async def skipline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = perf_counter()
    resource = request.match_info.route.resource
    status = 500
    try:
        try:
            if resource is not None and resource.name in AUTHENTICATED_RESOURCES:
                request[CALLER] = (anonymous_caller(request, resource.name)
                                   or await authenticated(request))
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                status = exc.status
                harden(exc)
                raise
            response = close_if_body_pending(request, problems.from_http_exception(exc))
        except Exception as error:
            response = error_response(request, error)
        status = response.status
        harden(response)
        return response
    except asyncio.CancelledError:
        status = CLIENT_GONE
        raise
    finally:
        route = UNMATCHED if resource is None else resource.canonical
        figures = request.app[METRICS].route(route, request.method)
        figures.observe(status, perf_counter() - started)


def error_response(request: web.Request, error: Exception) -> web.Response:
    """The problem for a failure: mapped errors as problems.py says, a client that went away
    as CLIENT_GONE (one debug line: anyone can do it, so it must not flood the log), anything
    else a logged 500."""
    if isinstance(error, SkiplineError):
        return problem_for(request, error)
    if isinstance(error, ConnectionError) and request.transport is None:
        log.debug("client went away during %s %s", request.method, request.rel_url.path)
        return web.Response(status=CLIENT_GONE)  # recorded, never sent: nobody is listening
    log.exception("unexpected error serving %s %s", request.method, request.rel_url)
    return close_if_body_pending(request, problems.internal_error())


def anonymous_caller(request: web.Request, resource: str) -> Caller | None:
    """The anonymous caller for a request without a key where that is allowed (anonymous
    orders, or the dashboard's summary, whose handlers check `dashboard` themselves), at no
    store lookup (and without even a coroutine); None when the key must be checked."""
    if hdrs.AUTHORIZATION in request.headers:
        return None
    service = request.app[SERVICE]
    if service.settings.allow_anonymous or resource in SUMMARY_RESOURCES:
        return service.anonymous
    return None


async def authenticated(request: web.Request) -> Caller:
    return await request.app[SERVICE].authenticate(bearer_secret(request))


def problem_for(request: web.Request, error: SkiplineError) -> web.Response:
    if problems.problem_type_of(error) is problems.INTERNAL:
        log.exception("unmapped error serving %s %s", request.method, request.rel_url)
    return close_if_body_pending(request, problems.from_error(error))


def close_if_body_pending(request: web.Request, response: web.Response) -> web.Response:
    """A refusal sent before the body has arrived (or after it could not be read) says
    `Connection: close` (RFC 9110 §15.5): the rest of the body is never read, and the next
    request cannot be mistaken for it."""
    if not request.content.is_eof() or request.content.exception() is not None:
        response.force_close()
    return response


def bearer_secret(request: web.Request) -> str | None:
    """The key from `Authorization: Bearer KEY`; None without the header; 401 if malformed.
    A key is printable ASCII: anything else (bytes that are not UTF-8 arrive as lone
    surrogates) is refused here, and the refusal never repeats what was sent."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not is_key_shaped(secret):
        raise NotAuthenticated("the Authorization header must be 'Bearer <API key>'")
    return secret


def is_key_shaped(secret: str) -> bool:
    """One word of printable ASCII (the shape of every key `skipline keys add` makes)."""
    return secret.isascii() and secret.isprintable() and bool(secret) and " " not in secret
