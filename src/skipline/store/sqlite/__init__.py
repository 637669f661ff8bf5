"""The SQLite store: one writer thread batching writes into group commits, readers in WAL mode.

store.py is the Store itself; writer.py runs the writer thread and its batching, batch.py one
batch's transaction, write_ops.py the SQL each kind of write runs inside it, reads.py the
reads, workers.py the worker registry, rows.py the row codecs, schema.py connections and
migrations; sql/ holds the named queries and the numbered migrations.
"""

from skipline.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
