"""Numbered migrations, in each backend package: <backend>/sql/migrations/NNNN_what.sql.

Each store applies, in order, the migrations whose number is above the highest it has recorded;
how it records them is the backend's business (both use a `schema_migrations` table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skipline.store.queries import backend_sql

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """All migrations of `backend`, ordered by version; gaps and duplicates are errors."""
    folder = backend_sql(backend).joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = MIGRATION_FILE.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        raise RuntimeError(f"{backend} migrations must be numbered 0001 upwards without gaps")
    return found


def pending(migrations: list[Migration], applied_version: int) -> list[Migration]:
    """The migrations still to apply after `applied_version`."""
    return [m for m in migrations if m.version > applied_version]
