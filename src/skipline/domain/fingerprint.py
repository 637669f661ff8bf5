"""The fingerprint of a submission, stored with an order submitted under an idempotency key.
A retry must be the same request: the same key with another body is a mistake (or another
client guessing the key), and answering it with the first order would hide that."""

from __future__ import annotations

import hashlib

import msgspec

from skipline.domain.models import DEFAULT_KIND, JSON

_ENCODER = msgspec.json.Encoder(order="sorted")
"""Object keys sorted, so the same payload in another key order is the same request."""


def request_fingerprint(
    tier: str, payload: JSON, duration: float, customer: str = "", kind: str = DEFAULT_KIND,
    schedule: tuple[str, float] | None = None,
) -> str:
    """SHA-256 (hex) over what the submission asks for: its tier, payload and duration, the
    customer it names, its kind and its schedule as asked (`("delay", seconds)` or
    `("not_before", time)`: a retried `delay` is the same request even though it would start
    later). Each of the last three is left out when absent or the default, so fingerprints of
    requests without them stay as they were."""
    asked: list[JSON] = [tier, payload, duration]
    if customer:
        asked.append(customer)
    if kind != DEFAULT_KIND or schedule is not None:
        asked += [kind, None if schedule is None else list(schedule)]
    return hashlib.sha256(_ENCODER.encode(asked)).hexdigest()
