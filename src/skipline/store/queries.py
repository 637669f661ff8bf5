"""Named SQL queries, kept in each backend package's sql/queries.sql and loaded once per store.

A file holds blocks introduced by a line `-- name: some_name`; the text up to the next such
line is that query.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

NAME_MARKER = "-- name:"


def parse_queries(text: str) -> dict[str, str]:
    """Split a .sql file into {name: sql}; duplicate or empty names are errors."""
    queries: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip().startswith(NAME_MARKER):
            _store_query(queries, name, lines)
            name = line.strip()[len(NAME_MARKER):].strip()
            if not name:
                raise ValueError("a '-- name:' line without a name")
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice")
            lines = []
        else:
            lines.append(line)
    _store_query(queries, name, lines)
    return queries


def _store_query(queries: dict[str, str], name: str | None, lines: list[str]) -> None:
    if name is not None:
        queries[name] = "\n".join(lines).strip().rstrip(";")


def load_queries(backend: str) -> dict[str, str]:
    """The named queries of `backend` (sqlite, postgres): its package's sql/queries.sql."""
    return parse_queries(backend_sql(backend).joinpath("queries.sql").read_text(encoding="utf-8"))


def backend_sql(backend: str) -> Traversable:
    """The sql/ folder of the store package `backend`, found as package data without importing
    the package (which would import its driver)."""
    return resources.files("skipline.store").joinpath(backend, "sql")
