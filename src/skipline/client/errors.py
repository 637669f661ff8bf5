"""Typed exceptions for problem+json answers (RFC 9457): one class per HTTP status the API
uses, each carrying the server's problem; and the two ways a call ends without one."""

from __future__ import annotations

from skipline.api.schemas import Problem


class ClientError(Exception):
    """A skipline call did not succeed."""


class ProblemError(ClientError):
    """The server answered with a problem document; `problem` holds it (`status`, `type`,
    `title`, `detail`), `retry_after` the seconds it asked to wait, if any."""

    def __init__(self, problem: Problem, retry_after: float | None = None) -> None:
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}")
        self.problem = problem
        self.status = problem.status
        self.retry_after = retry_after


class BadRequest(ProblemError):
    """400: the request was malformed."""


class Unauthorized(ProblemError):
    """401: an API key is required, or the one given is unknown or revoked."""


class Forbidden(ProblemError):
    """403: the API key does not grant that (a better tier)."""


class NotFound(ProblemError):
    """404: no such order (or not yours)."""


class Conflict(ProblemError):
    """409: the order is not in a state that allows it (cancel, retry)."""


class PayloadTooLarge(ProblemError):
    """413: the request body is too large."""


class Unprocessable(ProblemError):
    """422: the request is well-formed but invalid (schema, callback URL, wait)."""


class RateLimited(ProblemError):
    """429: too many requests; retried by the client until its deadline."""


class Unavailable(ProblemError):
    """503: queue full, draining or store down; retried by the client until its deadline.
    `outcome_unknown` is True when the server could not tell whether a submission was stored
    (the client's retry with the same Idempotency-Key settles it)."""

    @property
    def outcome_unknown(self) -> bool:
        return self.problem.type.endswith(":outcome-unknown")


class Unreachable(ClientError):
    """The server could not be reached (or stopped answering) until the deadline."""


BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 422: Unprocessable, 429: RateLimited, 503: Unavailable,
}


def problem_error(problem: Problem, retry_after: float | None) -> ProblemError:
    """The exception for a problem, by its status (ProblemError for any other)."""
    return BY_STATUS.get(problem.status, ProblemError)(problem, retry_after)
