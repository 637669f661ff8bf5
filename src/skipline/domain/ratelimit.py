"""Per-caller rate limits as token buckets: pure arithmetic on times the caller passes in, so
tests can drive it without waiting. A bucket holds up to `burst` tokens, refills at `rate`
tokens per second, and each request takes one; an empty bucket says how long until the next
token (the Retry-After a refused caller is given)."""

from __future__ import annotations

from dataclasses import dataclass

FIRST_SWEEP = 1024
"""Buckets kept before the first sweep for idle ones."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`rate` requests per second on average, `burst` at once."""

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError("a rate limit's rate must be > 0")
        if self.burst < 1:
            raise ValueError("a rate limit's burst must be >= 1")


@dataclass(slots=True)
class Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by caller. Memory stays bounded by the callers active lately: a
    bucket that has refilled completely is indistinguishable from a new one, so sweeping such
    buckets away (whenever their number has doubled since the last sweep) forgets nothing."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[RateLimit, Bucket]] = {}
        self._sweep_at = FIRST_SWEEP

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, caller: str, limit: RateLimit, now: float) -> float:
        """Take one token from `caller`'s bucket: 0.0 when allowed, else the seconds until a
        token will be there (nothing is taken then, so refused requests cost no budget)."""
        entry = self._buckets.get(caller)
        if entry is None or entry[0] != limit:
            if len(self._buckets) >= self._sweep_at:
                self._sweep(now)
            bucket = Bucket(float(limit.burst), now)
            self._buckets[caller] = (limit, bucket)
        else:
            bucket = entry[1]
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(limit.burst), bucket.tokens + elapsed * limit.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / limit.rate

    def _sweep(self, now: float) -> None:
        """Forget the buckets that are full by now; sweep again when twice as many remain."""
        self._buckets = {
            caller: (limit, bucket) for caller, (limit, bucket) in self._buckets.items()
            if bucket.tokens + max(0.0, now - bucket.updated) * limit.rate < limit.burst
        }
        self._sweep_at = max(FIRST_SWEEP, 2 * len(self._buckets))
