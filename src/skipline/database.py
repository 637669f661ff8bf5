"""What a `--db` URL names, said plainly: the absolute file of a SQLite database, a PostgreSQL
URL without its password. And the checks that keep a typo from silently starting an empty
queue somewhere else: a SQLite file's directory must exist, and commands that only read keys
refuse a SQLite file that does not exist yet."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from skipline.domain.errors import ConfigError
from skipline.store import sqlite_path


def display_url(url: str) -> str:
    """A database URL fit for logs: any password is replaced by '***'."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file `url` names; None for other stores and for
    SQLite's in-memory database."""
    if not url.startswith("sqlite://"):
        return None
    path = sqlite_path(url)
    if path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path).expanduser().absolute()


def describe(url: str) -> str:
    """How a log line names the database: the absolute file, or the URL without password."""
    file = sqlite_file(url)
    if file is not None:
        return str(file)
    if url.startswith("memory://"):
        return "memory:// (in this process only: nothing is kept after it exits)"
    return display_url(url)


def check_location(url: str) -> None:
    """Refuse a SQLite file whose directory does not exist (rather than creating it: a typo in
    --db would otherwise start an empty queue there)."""
    file = sqlite_file(url)
    if file is None or file.parent.exists():
        return
    raise ConfigError(
        f"--db {url}: the directory {file.parent} does not exist. Create it first "
        f"(mkdir -p {file.parent}) or choose another path"
    )


def check_exists(url: str) -> None:
    """Refuse a SQLite file that does not exist, for commands that would only find an empty
    database in it (listing or revoking keys)."""
    check_location(url)
    file = sqlite_file(url)
    if file is None or file.exists() or not file.parent.is_dir():
        return  # (a parent that is not a directory: the store says why it cannot open)
    raise ConfigError(
        f"no database at {file}: pass the --db of your server (or set SKIPLINE_DB); "
        "skipline keys add creates one"
    )
