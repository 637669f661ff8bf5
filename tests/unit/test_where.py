"""How start lines name the database and the server's URLs: the absolute SQLite file, a
PostgreSQL URL without its password, and a loopback URL when listening on every address."""

from __future__ import annotations

from pathlib import Path

import pytest

from skipline.config import Settings
from skipline.database import describe, sqlite_file
from skipline.process_log import base_url


def test_a_relative_sqlite_file_is_named_absolutely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert describe("sqlite:///./skipline.db") == str(tmp_path / "skipline.db")
    assert describe("sqlite:////srv/q.db") == "/srv/q.db"
    assert sqlite_file("sqlite:///:memory:") is None


def test_other_stores_are_named_without_a_password() -> None:
    assert describe("postgresql://app:s3cret@db:5432/q") == "postgresql://app:***@db:5432/q"
    assert describe("memory://").startswith("memory:// (in this process only")


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:8080"),
    ("0.0.0.0", "http://127.0.0.1:8080"),
    ("::", "http://[::1]:8080"),
    ("::1", "http://[::1]:8080"),
    ("queue.internal", "http://queue.internal:8080"),
])
def test_the_logged_url_is_one_a_browser_can_open(host: str, url: str) -> None:
    assert base_url(Settings(host=host, port=8080)) == url
