"""The one place that chooses HTTP statuses: every error becomes an RFC 9457
`application/problem+json` response here, and nowhere else."""

from __future__ import annotations

import math
from dataclasses import dataclass
from http import HTTPStatus

import msgspec
from aiohttp import web

from skipline.api.errors import (
    BodyTooLarge,
    InvalidRequest,
    MalformedRequest,
    RequestTimeout,
    UndecodableBody,
    UnsupportedContentEncoding,
    UnsupportedExpectation,
    UnsupportedMediaType,
)
from skipline.api.schemas import Problem
from skipline.domain.errors import (
    AdminRequired,
    CallbackNotAllowed,
    CustomerNotAllowed,
    CustomerQueueFull,
    IdempotencyKeyReused,
    InvalidApiKey,
    InvalidKeyName,
    InvalidOrder,
    NotAuthenticated,
    OrderNotCancellable,
    OrderNotFound,
    OrderNotRequeueable,
    OutcomeUnknown,
    QueueFull,
    RateLimited,
    ShuttingDown,
    SkiplineError,
    StoreUnavailable,
    TierNotAllowed,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:skipline:problem:"
SHUTTING_DOWN_RETRY_AFTER = 5
"""Seconds a client should wait before retrying a draining process (or reach another one)."""
GENERIC_DETAIL = "An unexpected error occurred; it has been logged."
ACCEPTED_ENCODINGS = "gzip, deflate, identity"
"""The request Content-Encodings the server decodes (the 415's Accept-Encoding)."""


@dataclass(frozen=True, slots=True)
class ProblemType:
    """How one kind of error is presented: its status and the last part of its type URI."""

    status: int
    slug: str


PROBLEM_TYPES: dict[type[SkiplineError], ProblemType] = {
    MalformedRequest: ProblemType(400, "malformed-request"),
    UndecodableBody: ProblemType(400, "undecodable-body"),
    NotAuthenticated: ProblemType(401, "not-authenticated"),
    InvalidApiKey: ProblemType(401, "invalid-api-key"),
    TierNotAllowed: ProblemType(403, "tier-not-allowed"),
    AdminRequired: ProblemType(403, "admin-required"),
    CustomerNotAllowed: ProblemType(403, "customer-not-allowed"),
    OrderNotFound: ProblemType(404, "order-not-found"),
    RequestTimeout: ProblemType(408, "request-timeout"),
    OrderNotCancellable: ProblemType(409, "order-not-cancellable"),
    OrderNotRequeueable: ProblemType(409, "order-not-requeueable"),
    BodyTooLarge: ProblemType(413, "body-too-large"),
    UnsupportedMediaType: ProblemType(415, "unsupported-media-type"),
    UnsupportedContentEncoding: ProblemType(415, "unsupported-content-encoding"),
    UnsupportedExpectation: ProblemType(417, "unsupported-expectation"),
    InvalidOrder: ProblemType(422, "invalid-order"),
    CallbackNotAllowed: ProblemType(422, "callback-not-allowed"),
    InvalidKeyName: ProblemType(422, "invalid-key-name"),
    InvalidRequest: ProblemType(422, "invalid-request"),
    IdempotencyKeyReused: ProblemType(422, "idempotency-key-reused"),
    RateLimited: ProblemType(429, "rate-limited"),
    CustomerQueueFull: ProblemType(429, "max-queued-per-customer"),
    QueueFull: ProblemType(503, "queue-full"),
    OutcomeUnknown: ProblemType(503, "outcome-unknown"),
    StoreUnavailable: ProblemType(503, "store-unavailable"),
    ShuttingDown: ProblemType(503, "shutting-down"),
}
INTERNAL = ProblemType(500, "internal-error")
UNKNOWN = "unknown"
"""The `outcome` member of an outcome-unknown problem."""


class UnknownOutcomeProblem(Problem, omit_defaults=True):
    """A problem whose request may or may not have taken effect (RFC 9457 extension members):
    `outcome` is "unknown", `order_id` names the order, and `location`, when known, is where
    `GET` tells once the store is back (200: it was stored; 404: it was not)."""

    outcome: str
    order_id: str
    location: str | None = None


def problem_type_of(error: SkiplineError) -> ProblemType:
    """The entry for the error's class or its nearest mapped ancestor (unmapped: 500)."""
    for cls in type(error).__mro__:
        if cls in PROBLEM_TYPES:
            return PROBLEM_TYPES[cls]
    return INTERNAL


def title_of(error_class: type[SkiplineError]) -> str:
    """A problem type's title is the first line of its error class's docstring."""
    return (error_class.__doc__ or "").strip().splitlines()[0]


def from_error(error: SkiplineError, location: str | None = None) -> web.Response:
    """The problem response for a domain or API error. `location`: the URL of the order an
    OutcomeUnknown is about (only the route knows it, mount prefix included)."""
    kind = problem_type_of(error)
    if kind is INTERNAL:
        return internal_error()
    headers: dict[str, str] = {}
    if kind.status in (429, 503):
        headers["Retry-After"] = str(retry_after_seconds(error))
    if kind.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="skipline"'
    if isinstance(error, UnsupportedContentEncoding):
        headers["Accept-Encoding"] = ACCEPTED_ENCODINGS  # RFC 9110 section 15.5.16
    type_uri, title = TYPE_PREFIX + kind.slug, title_of(type(error))
    if isinstance(error, OutcomeUnknown):
        problem: Problem = UnknownOutcomeProblem(
            type_uri, title, kind.status, error.detail, UNKNOWN, error.order_id, location,
        )
        return respond(problem, headers)
    return render(kind.status, type_uri, title, error.detail, headers)


def from_http_exception(exc: web.HTTPException) -> web.Response:
    """Router errors (404, 405, …) as problems; `about:blank` since HTTP already names them."""
    headers = {name: exc.headers[name] for name in ("Allow", "Retry-After") if name in exc.headers}
    if exc.status in (429, 503) and "Retry-After" not in headers:
        headers["Retry-After"] = "1"
    detail = http_detail(exc)
    return render(exc.status, "about:blank", HTTPStatus(exc.status).phrase, detail, headers)


def http_detail(exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{exc.method} is not allowed here; allowed: {allowed}"
    if isinstance(exc, web.HTTPNotFound):
        return "No such resource."
    return exc.text or HTTPStatus(exc.status).description


def internal_error() -> web.Response:
    """A 500 that says nothing about the cause (the traceback goes to the server log)."""
    return render(500, TYPE_PREFIX + INTERNAL.slug, "Internal server error", GENERIC_DETAIL)


def retry_after_seconds(error: SkiplineError) -> int:
    """Whole seconds, at least 1, from the error's own estimate when it has one."""
    if isinstance(error, ShuttingDown):
        return SHUTTING_DOWN_RETRY_AFTER
    estimate = getattr(error, "retry_after", 1.0)
    if not isinstance(estimate, int | float) or not math.isfinite(estimate):
        return 1
    return max(1, math.ceil(estimate))


def render(
    status: int, type_uri: str, title: str, detail: str, headers: dict[str, str] | None = None,
) -> web.Response:
    return respond(Problem(type_uri, title, status, detail), headers)


def respond(problem: Problem, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=problem.status, body=msgspec.json.encode(problem),
        content_type=PROBLEM_CONTENT_TYPE, headers=headers,
    )
