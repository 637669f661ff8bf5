"""The worker: a pool of slots that claims orders, runs the handler on each and records what
became of it. One job per module: `pool` (lifecycle, drain, claim loop, slots) composes
`executor` (a handler under the order timeout), `recorder` (outcomes and releases, with store
retries), `heartbeat` (lease renewal), `presence` (the pool's row in the worker registry) and
`suspects` (rescued orders run alone); `runs` holds
the types they share. Only the pool imports the others (an import-linter contract)."""

from skipline.worker.pool import CANCEL_GRACE, POLL_SECONDS, WorkerPool, default_worker_id
from skipline.worker.runs import Outcome, Run, Signals

__all__ = ["CANCEL_GRACE", "POLL_SECONDS", "Outcome", "Run", "Signals", "WorkerPool",
           "default_worker_id"]
