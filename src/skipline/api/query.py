"""Query-string parsing for `GET /orders`: strict, every problem a 422 naming the parameter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import MultiMapping

from skipline.api.errors import InvalidRequest
from skipline.domain.ids import MAX_CUSTOMER, is_customer_id, is_kind_name
from skipline.domain.models import Status, Tier

LIST_PARAMETERS = frozenset({"status", "tier", "limit", "cursor", "customer", "kind"})
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR_DIGITS = 18
"""Every such number fits a 64-bit sequence (2**63 - 1 has 19 digits)."""
CURSOR_PATTERN = f"^[1-9][0-9]{{0,{MAX_CURSOR_DIGITS - 1}}}$"
CURSOR = re.compile(CURSOR_PATTERN.removeprefix("^").removesuffix("$"), re.ASCII)


@dataclass(frozen=True, slots=True)
class ListQuery:
    status: Status | None
    tier: str | None
    limit: int
    before_seq: int | None
    customer: str | None = None
    kind: str | None = None


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
        kind=_kind(query.get("kind")),
    )


def _kind(raw: str | None) -> str | None:
    if raw is not None and not is_kind_name(raw):
        raise InvalidRequest(
            "kind must be 1 to 64 of a-z 0-9 _ . - (starting with a letter or digit)")
    return raw


def _customer(raw: str | None) -> str | None:
    if raw is not None and not is_customer_id(raw):
        raise InvalidRequest(f"customer must be 1 to {MAX_CUSTOMER} printable ASCII characters")
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
    """The position after which the next page starts, in decimal digits. Any such number is
    a valid cursor (it names a position, not an order, and a page only ever holds the caller's
    own orders), so the OpenAPI document can state the whole rule as a pattern."""
    return str(seq)


def decode_cursor(cursor: str) -> int:
    if CURSOR.fullmatch(cursor) is None:
        raise InvalidRequest(
            f"cursor {cursor[:80]!r} is not a cursor: a next_cursor of an earlier page "
            f"(1 to {MAX_CURSOR_DIGITS} decimal digits)"
        )
    return int(cursor)
