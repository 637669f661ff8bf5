"""Schemathesis hooks for .ci/schemathesis (loaded through SCHEMATHESIS_HOOKS).

The fuzzer draws Idempotency-Key values from a small space ("0", "a", ...), so two requests
with different bodies soon share a key, and the server rightly refuses the second with 422
(idempotency-key-reused: a rule about the *history* of requests, which no schema can state).
Each call that carries a key the schema allows gets a suffix of its own, so every key is used
once; keys the schema forbids (negative cases) are sent untouched. Key reuse itself is tested
in tests/contract/test_idempotency_fingerprint.py and tests/acceptance/test_hostile_input.py.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import schemathesis

HEADER = "Idempotency-Key"
VALID = re.compile(r"[!-~]([ -~]*[!-~])?")
MAX_LENGTH = 255
_calls = itertools.count(1)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    headers = case.headers
    if not headers or HEADER not in headers:
        return
    key = headers[HEADER]
    if not isinstance(key, str) or len(key) > MAX_LENGTH or not VALID.fullmatch(key):
        return
    suffix = f"~{next(_calls)}"
    headers[HEADER] = key[: MAX_LENGTH - len(suffix)] + suffix
