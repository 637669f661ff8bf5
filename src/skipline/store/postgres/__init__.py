"""The PostgreSQL store: batched statements over a connection pool, commits in doubt settled.

store.py is the Store itself; batch.py gathers concurrent calls into one statement, doubt.py
settles a commit whose answer was lost, errors.py tells an outage from a refusal, listener.py
hears the wake-up NOTIFYs, migrate.py applies the migrations, rows.py decodes rows; sql/ holds
the named queries and the numbered migrations.
"""

from skipline.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
