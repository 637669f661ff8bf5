"""Errors that only exist at the HTTP edge (the request itself is unusable). They share the
domain's base class so `problems.py` maps every error in one table."""

from __future__ import annotations

from skipline.domain.errors import SkiplineError


class MalformedRequest(SkiplineError):
    """The request body is not well-formed JSON."""


class InvalidRequest(SkiplineError):
    """The request is not valid."""


class UnsupportedMediaType(SkiplineError):
    """The request body must be sent as application/json (UTF-8)."""


class BodyTooLarge(SkiplineError):
    """The request body is too large."""


class UnsupportedExpectation(SkiplineError):
    """Only `Expect: 100-continue` is supported."""


class UndecodableBody(SkiplineError):
    """The request body is not encoded as its Content-Encoding says."""


class UnsupportedContentEncoding(SkiplineError):
    """The request body's Content-Encoding is not supported (use gzip, deflate or none)."""


class RequestTimeout(SkiplineError):
    """The request did not arrive in time."""
