"""The `Skipline-Signature` header of a callback: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>" under the shared secret>`. Receivers check it with `verify` (or the same few
lines of their own, see the README), and refuse stale timestamps to stop replays."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Skipline-Signature"
DEFAULT_TOLERANCE = 300.0
"""Seconds a signature's timestamp may differ from the receiver's clock."""


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>`."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def verify(
    secret: str, body: bytes, header: str, *, tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True when `header` signs `body` under `secret` with a timestamp within `tolerance`
    seconds of `now`. Compares in constant time."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = signature(secret, body, timestamp)
    return hmac.compare_digest(expected, fields.get("v1", ""))
