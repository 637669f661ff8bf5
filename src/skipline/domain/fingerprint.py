"""The fingerprint of a submission, stored with an order submitted under an idempotency key.
A retry must be the same request: the same key with another body is a mistake (or another
client guessing the key), and answering it with the first order would hide that."""

from __future__ import annotations

import hashlib

import msgspec

from skipline.domain.models import JSON

_ENCODER = msgspec.json.Encoder(order="sorted")
"""Object keys sorted, so the same payload in another key order is the same request."""


def request_fingerprint(tier: str, payload: JSON, duration: float, customer: str = "") -> str:
    """SHA-256 (hex) over what the submission asks for: its tier, payload and duration, and
    the customer it names, if any (left out when none, so fingerprints without one stay as
    they were)."""
    asked = [tier, payload, duration, customer] if customer else [tier, payload, duration]
    return hashlib.sha256(_ENCODER.encode(asked)).hexdigest()
