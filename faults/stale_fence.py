"""`python -m faults.stale_fence serve ...`: skipline with a planted fencing bug, for the test
that shows the checker catches one. The PostgreSQL store's `complete_orders` statement is given
without its lease-token condition, so a worker whose lease was taken over can still record its
result while the order runs elsewhere: exactly the bug fencing exists to prevent (invariant 4
(docs/architecture.md)). Only this harness module plants it, by replacing the query text the
store loads; the product's code and SQL are untouched."""

from __future__ import annotations

from skipline.store.postgres import store as postgres_store
from skipline.store.queries import load_queries

FENCE = "JOIN orders o ON o.id = outcome.id AND o.lease_token = outcome.token"
NO_FENCE = "JOIN orders o ON o.id = outcome.id"


def without_fence(backend: str) -> dict[str, str]:
    queries = load_queries(backend)
    if FENCE not in queries["complete_orders"]:
        raise RuntimeError("complete_orders changed: the planted fencing bug must be updated")
    queries["complete_orders"] = queries["complete_orders"].replace(FENCE, NO_FENCE)
    return queries


def main() -> None:
    postgres_store.load_queries = without_fence  # type: ignore[attr-defined]
    from skipline.cli import main as skipline_main

    skipline_main()


if __name__ == "__main__":
    main()
