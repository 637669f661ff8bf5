"""Schemathesis hooks for .ci/schemathesis (loaded through SCHEMATHESIS_HOOKS).

The fuzzer draws Idempotency-Key values from a small space ("0", "a", ...), so two requests
with different bodies soon share a key, and the server rightly refuses the second with 422
(idempotency-key-reused: a rule about the *history* of requests, which no schema can state).
Each call that carries a key the schema allows gets a suffix of its own, so every key is used
once; keys the schema forbids (negative cases) are sent untouched. Key reuse itself is tested
in tests/contract/test_idempotency_fingerprint.py and tests/acceptance/test_hostile_input.py.

Two more rules depend on the running server rather than on the schema. A `callback_url` is
accepted only when it matches the server's configured [callbacks] allow list (and callbacks are
off in this throwaway server), so a schema-valid callback_url is removed from the body; the
rule is tested in tests/integration (webhooks). A schema-valid `?wait=S` may hold a request for
up to 60 s, longer than the fuzzer waits for an answer, so it is shortened to 0.1 s; waiting
itself is tested in the integration and contract suites. And a query parameter the schema does
not define, generated with a value that is not a scalar (null, an object, an array), may be
left out of the request by the HTTP client, so the server would see a valid request that the
fuzzer counts as invalid: such a parameter is sent with an empty value. Last, `not_before`
must be at most 30 days ahead of the server's clock, and not sent with `delay`: neither rule is
a schema's, so a schema-valid `not_before` (a string) is removed from the body; scheduling is
tested in tests/integration/test_api_kinds.py and the contract suite.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import schemathesis

HEADER = "Idempotency-Key"
VALID = re.compile(r"[!-~]([ -~]*[!-~])?")
MAX_LENGTH = 255
CALLBACK_MAX_LENGTH = 2048
LONGEST_WAIT = 60.0
SHORT_WAIT = "0.1"
DEFINED_QUERY = frozenset({"wait", "status", "tier", "limit", "cursor", "customer", "kind"})
_calls = itertools.count(1)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    _without_allowed_callback(case)
    _without_not_before(case)
    _with_undefined_nulls_sent(case)
    _with_short_wait(case)
    _with_unique_key(case)


def _without_allowed_callback(case: Any) -> None:
    body = case.body
    if isinstance(body, dict):
        url = body.get("callback_url")
        if isinstance(url, str) and len(url) <= CALLBACK_MAX_LENGTH:
            del body["callback_url"]


def _without_not_before(case: Any) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("not_before"), str):
        del body["not_before"]


def _with_undefined_nulls_sent(case: Any) -> None:
    query = case.query
    if not query:
        return
    for name, value in list(query.items()):
        if name not in DEFINED_QUERY and not isinstance(value, str | int | float | bool):
            query[name] = ""


def _with_short_wait(case: Any) -> None:
    query = case.query
    if not query or "wait" not in query:
        return
    try:
        seconds = float(query["wait"])
    except (TypeError, ValueError):
        return
    if 0 < seconds <= LONGEST_WAIT:
        query["wait"] = SHORT_WAIT


def _with_unique_key(case: Any) -> None:
    headers = case.headers
    if not headers or HEADER not in headers:
        return
    key = headers[HEADER]
    if not isinstance(key, str) or len(key) > MAX_LENGTH or not VALID.fullmatch(key):
        return
    suffix = f"~{next(_calls)}"
    headers[HEADER] = key[: MAX_LENGTH - len(suffix)] + suffix
