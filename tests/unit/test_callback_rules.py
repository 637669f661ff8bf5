"""The rules of callbacks that need no server: the `[callbacks]` table, which URLs the allow
list admits, and the signature a receiver checks."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from skipline.config import CallbackSettings, parse_callbacks
from skipline.domain.errors import ConfigError
from skipline.signing import signature_header, verify

ALLOWED = CallbackSettings(("https://hooks.example.com/", "http://127.0.0.1:9000/hook/"), "s")


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/", "https://hooks.example.com/a/b?c=1",
    "http://127.0.0.1:9000/hook/x",
])
def test_urls_under_an_allowed_prefix_are_allowed(url: str) -> None:
    assert ALLOWED.allows(url)


@pytest.mark.parametrize("url", [
    "https://hooks.example.com.evil.example/", "http://hooks.example.com/",
    "https://user@hooks.example.com/", "http://127.0.0.1:9000/other", "ftp://hooks.example.com/",
    "https://hooks.example.com", "", "not a url",
])
def test_other_urls_are_not(url: str) -> None:
    assert not ALLOWED.allows(url)


def test_the_table_is_validated_and_the_secret_may_come_from_outside() -> None:
    parsed = parse_callbacks({"allow": ["https://a.example/"], "timeout": 5}, "t", "env")
    assert parsed == CallbackSettings(("https://a.example/",), "env", timeout=5.0)
    assert parse_callbacks(None) is None
    for table, words in [
        ({"allow": ["https://a.example/"]}, "secret"),
        ({"allow": ["https://a.example"], "secret": "s"}, "prefix"),
        ({"allow": "https://a.example/", "secret": "s"}, "list"),
        ({"allow": [], "secret": "s", "retries": 3}, "unknown"),
        ({"allow": [], "secret": "s", "timeout": 0}, "> 0"),
    ]:
        with pytest.raises(ConfigError, match=words):
            parse_callbacks(table, "t")


def test_a_signature_verifies_only_with_its_secret_body_and_a_recent_time() -> None:
    body = b'{"id": "x"}'
    header = signature_header("secret", body, 1_000)

    assert header.startswith("t=1000,v1=") and len(header.split("v1=")[1]) == 64
    assert verify("secret", body, header, now=1_100)
    assert not verify("other", body, header, now=1_100)
    assert not verify("secret", body + b" ", header, now=1_100)
    assert not verify("secret", body, header, now=1_000 + 301)
    assert not verify("secret", body, "t=abc,v1=00", now=1_000)
    assert not verify("secret", body, "", now=1_000)


def test_the_readme_snippet_verifies_a_real_signature() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    [snippet] = [block for block in blocks if "def verify(" in block]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    body = b'{"id": "01a2", "status": "succeeded"}'
    header = signature_header("secret", body, int(time.time()))

    assert namespace["verify"]("secret", body, header)
    assert not namespace["verify"]("secret", body + b"x", header)
    assert not namespace["verify"]("other", body, header)
