"""The .sql loaders: named queries, numbered migrations, and splitting a migration into
statements so it can run inside the store's own transaction."""

from __future__ import annotations

import re
import sqlite3

import pytest

from skipline.store.migrate import load_migrations, pending
from skipline.store.queries import backend_sql, load_queries, parse_queries
from skipline.store.sqlite.schema import split_statements


def test_named_blocks_become_queries_without_trailing_semicolons() -> None:
    text = "-- a header, ignored\n-- name: first\nSELECT 1;\n\n-- name: second\n-- why\nSELECT 2\n"
    assert parse_queries(text) == {"first": "SELECT 1", "second": "-- why\nSELECT 2"}


@pytest.mark.parametrize("text", ["-- name: a\nSELECT 1\n-- name: a\nSELECT 2", "-- name:\nX"])
def test_duplicate_or_empty_names_are_errors(text: str) -> None:
    with pytest.raises(ValueError):
        parse_queries(text)


SHARED_QUERIES = frozenset({
    "migrations_table", "migrations_version", "migrations_record", "ping",
    "insert_orders", "list_orders", "list_owner_orders", "cancel_order",
    "complete_orders", "prune_finished", "queued_counts", "finished_since",
    "insert_key", "find_key", "list_keys", "revoke_key",
    "requeue_order", "claim_callbacks", "record_callback", "find_callbacks", "promote_due",
    "next_due",
    "queued_health", "longest_waiting", "busiest_groups", "finished_by_status",
    "register_worker", "beat_worker", "remove_worker", "live_workers", "prune_workers",
})
"""Queries that mean the same in both backends, so they have the same name in both."""


def test_both_backends_name_the_shared_queries_alike() -> None:
    sqlite, postgres = load_queries("sqlite"), load_queries("postgres")
    assert set(sqlite) & set(postgres) == SHARED_QUERIES


def test_the_queries_and_migrations_are_package_data_of_their_store() -> None:
    for backend in ("sqlite", "postgres"):
        assert load_queries(backend) and load_migrations(backend)
        assert backend_sql(backend).joinpath("queries.sql").is_file()


def test_every_sqlite_query_compiles_against_the_migrated_schema() -> None:
    connection = sqlite3.connect(":memory:")
    for migration in load_migrations("sqlite"):
        connection.executescript(migration.sql)
    queries = load_queries("sqlite")
    connection.execute(queries["migrations_table"])
    for name, sql in queries.items():
        try:
            connection.execute("EXPLAIN " + sql, _parameters(sql))
        except sqlite3.Error as exc:
            pytest.fail(f"query {name!r} does not compile: {exc}")


def _parameters(sql: str) -> dict[str, None] | tuple[None, ...]:
    """None for every parameter: named ones (:name) by name, numbered ones (?N) by position."""
    numbered = [int(number) for number in re.findall(r"\?(\d+)", sql)]
    if numbered:
        return (None,) * max(numbered)
    words = sql.replace("(", " ").replace(")", " ").replace(",", " ").split()
    return dict.fromkeys(word[1:] for word in words
                         if word.startswith(":") and word[1:].isidentifier())


def test_sqlite_migrations_are_numbered_from_one() -> None:
    migrations = load_migrations("sqlite")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert pending(migrations, len(migrations)) == []


def test_statements_split_at_semicolons_outside_strings_comments_and_triggers() -> None:
    script = """
        -- a comment; with a semicolon
        CREATE TABLE t (x TEXT DEFAULT 'a;b');
        CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
            UPDATE t SET x = 'c' WHERE x = 'd';
            DELETE FROM t WHERE x = 'e';
        END;
        /* block; comment */ INSERT INTO t VALUES ('f');
        -- trailing comment
    """
    statements = list(split_statements(script))
    assert len(statements) == 3
    assert statements[0].endswith("DEFAULT 'a;b');")
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    connection = sqlite3.connect(":memory:")
    for statement in statements:
        connection.execute(statement)
    assert connection.execute("SELECT x FROM t").fetchall() == [("f",)]


def test_an_unterminated_statement_is_an_error() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        list(split_statements("CREATE TABLE t (x);\nSELECT 1"))
