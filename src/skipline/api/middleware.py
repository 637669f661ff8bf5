"""Middlewares, outermost first: metrics (sees the final status), errors (turns every failure
into a problem), authentication (puts the Caller on the request)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from skipline.api import problems
from skipline.api.appkeys import CALLER, METRICS, SERVICE
from skipline.domain.errors import NotAuthenticated, SkiplineError

log = logging.getLogger("skipline.api")

AUTHENTICATED_RESOURCES = frozenset({"orders", "order"})
"""Resource names whose handlers act for a caller; the rest (health, stats, docs) are open."""


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's convention)
        raise
    finally:
        elapsed = time.perf_counter() - started
        request.app[METRICS].request_served(route_label(request), request.method, status, elapsed)


def route_label(request: web.Request) -> str:
    """The route template, never the raw path, so label cardinality stays bounded."""
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SkiplineError as error:
        if problems.problem_type_of(error) is problems.INTERNAL:
            log.exception("unmapped error serving %s %s", request.method, request.rel_url)
        return close_if_body_pending(request, problems.from_error(error))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return close_if_body_pending(request, problems.from_http_exception(exc))
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.rel_url)
        return close_if_body_pending(request, problems.internal_error())


def close_if_body_pending(request: web.Request, response: web.Response) -> web.Response:
    """A refusal sent before the body has arrived says `Connection: close` (RFC 9110 §15.5):
    the rest of the body is never read, and the next request cannot be mistaken for it."""
    if not request.content.is_eof():
        response.force_close()
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    if resource is not None and resource.name in AUTHENTICATED_RESOURCES:
        service = request.app[SERVICE]
        request[CALLER] = await service.authenticate(bearer_secret(request))
    return await handler(request)


def bearer_secret(request: web.Request) -> str | None:
    """The key from `Authorization: Bearer KEY`; None without the header; 401 if malformed."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or " " in secret:
        raise NotAuthenticated("the Authorization header must be 'Bearer <API key>'")
    return secret
