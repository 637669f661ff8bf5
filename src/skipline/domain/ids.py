"""What an order id looks like. Ids are made of lowercase hex digits and dashes (a time
prefix and 128 random bits; older ones were UUIDs); anything else names no order, and is
answered as such before it reaches a store (PostgreSQL refuses a NUL in text outright)."""

from __future__ import annotations

import re

from skipline.domain.models import KIND_PATTERN

_KIND_NAME = re.compile(KIND_PATTERN)

MAX_ORDER_ID = 64
ORDER_ID_CHARACTERS = frozenset("0123456789abcdef-")


def is_order_id(text: str) -> bool:
    """True when `text` could be an order id; False means no order has it."""
    return 0 < len(text) <= MAX_ORDER_ID and ORDER_ID_CHARACTERS.issuperset(text)


MAX_CUSTOMER = 128
CUSTOMER_PATTERN = "^[ -~]{1,128}$"
"""A customer id as the OpenAPI document states it: 1 to 128 printable ASCII characters."""


def is_customer_id(text: str) -> bool:
    """True when `text` may name a customer (fair-share group) on an order."""
    return 0 < len(text) <= MAX_CUSTOMER and text.isascii() and text.isprintable()


def is_kind_name(text: str) -> bool:
    """True when `text` may name a kind of order: 1 to 64 of a-z 0-9 `_` `.` `-`, starting
    with a letter or digit."""
    return _KIND_NAME.fullmatch(text) is not None
