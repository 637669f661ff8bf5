"""Query-string parsing for `GET /orders`: strict, every problem a 422 naming the parameter."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import MultiMapping

from skipline.api.errors import InvalidRequest
from skipline.domain.models import Status, Tier

LIST_PARAMETERS = frozenset({"status", "tier", "limit", "cursor", "customer"})
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_SEQ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ListQuery:
    status: Status | None
    tier: str | None
    limit: int
    before_seq: int | None
    customer: str | None = None


def parse_list_query(query: MultiMapping[str], tiers: Mapping[str, Tier]) -> ListQuery:
    unknown = sorted(set(query) - LIST_PARAMETERS)
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s): {', '.join(unknown)}")
    for name in LIST_PARAMETERS:
        if len(query.getall(name, [])) > 1:
            raise InvalidRequest(f"query parameter {name!r} is given more than once")
    return ListQuery(
        status=_status(query.get("status")),
        tier=_tier(query.get("tier"), tiers),
        limit=_limit(query.get("limit")),
        before_seq=None if query.get("cursor") is None else decode_cursor(query["cursor"]),
        customer=_customer(query.get("customer")),
    )


def _customer(raw: str | None) -> str | None:
    if raw is not None and not (1 <= len(raw) <= 128 and raw.isprintable()):
        raise InvalidRequest("customer must be 1 to 128 printable characters")
    return raw


def _status(raw: str | None) -> Status | None:
    if raw is None:
        return None
    try:
        return Status(raw)
    except ValueError:
        allowed = ", ".join(status.value for status in Status)
        raise InvalidRequest(f"status must be one of {allowed}; got {raw!r}") from None


def _tier(raw: str | None, tiers: Mapping[str, Tier]) -> str | None:
    if raw is not None and raw not in tiers:
        raise InvalidRequest(f"tier must be one of {', '.join(sorted(tiers))}; got {raw!r}")
    return raw


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}; got {raw!r}")
    return int(raw)


def encode_cursor(seq: int) -> str:
    """Opaque to clients: they pass back what they were given."""
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    invalid = InvalidRequest(f"cursor {cursor[:80]!r} is not a cursor this server issued")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise invalid from None
    prefix, _, digits = text.partition(":")
    if prefix != "seq" or not digits.isascii() or not digits.isdigit() or len(digits) > 19:
        raise invalid
    seq = int(digits)
    if not 1 <= seq <= MAX_SEQ:
        raise invalid
    return seq
