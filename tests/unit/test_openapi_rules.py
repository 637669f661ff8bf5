"""The OpenAPI document states the rules the server enforces, so a request valid by the
document is never refused for a rule it does not state (schemathesis checks the rest live)."""

from __future__ import annotations

import re

import pytest

from skipline.api.errors import InvalidRequest
from skipline.api.openapi import build_document
from skipline.api.query import decode_cursor, encode_cursor
from skipline.domain.ids import is_order_id
from skipline.domain.models import DEFAULT_TIERS

DOCUMENT = build_document(DEFAULT_TIERS)


def parameter(path: str, method: str | None, name: str) -> dict[str, object]:
    item = DOCUMENT["paths"][path]
    found = item.get("parameters", []) + (item[method].get("parameters", []) if method else [])
    [match] = [p for p in found if p["name"] == name]
    return dict(match)


def pattern_of(path: str, method: str | None, name: str) -> re.Pattern[str]:
    schema = parameter(path, method, name)["schema"]
    assert isinstance(schema, dict)
    return re.compile(schema["pattern"])


@pytest.mark.parametrize("text", ["1", "42", "999999999999999999", "0", "01", "abc", "-1",
                                  "1" * 19, "", "c2VxOjE"])
def test_the_cursor_pattern_is_exactly_what_the_server_accepts(text: str) -> None:
    stated = pattern_of("/orders", "get", "cursor").search(text) is not None
    try:
        decode_cursor(text)
        accepted = True
    except InvalidRequest:
        accepted = False
    assert stated == accepted


def test_every_cursor_the_server_issues_matches_the_pattern() -> None:
    pattern = pattern_of("/orders", "get", "cursor")
    for seq in (1, 7, 10**17, 10**18 - 1):
        assert pattern.search(encode_cursor(seq)) and decode_cursor(encode_cursor(seq)) == seq


@pytest.mark.parametrize("text", ["01a222cb222d-e59e83373050c902e7d086a5e901f994", "abc", "-",
                                  "ABC", "a\x00b", "é", "a" * 64, "a" * 65, ""])
def test_the_order_id_pattern_is_what_can_be_an_id(text: str) -> None:
    stated = pattern_of("/orders/{id}", None, "id").search(text) is not None
    assert stated == is_order_id(text)


@pytest.mark.parametrize(("key", "valid"), [("a", True), ("a b", True), ("~!", True),
                                            (" a", False), ("a ", False), ("café", False),
                                            ("a\tb", False)])
def test_the_idempotency_key_pattern(key: str, valid: bool) -> None:
    assert (pattern_of("/orders", "post", "Idempotency-Key").search(key) is not None) == valid


def test_payload_strings_and_keys_may_not_hold_nul() -> None:
    value = DOCUMENT["components"]["schemas"]["JsonValue"]
    nul_free = re.compile(value["anyOf"][0]["pattern"])
    assert nul_free.search("fine") and not nul_free.search("a\x00b")
