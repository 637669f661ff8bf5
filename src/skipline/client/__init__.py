"""A Python client of skipline's HTTP API: `Client` (async, aiohttp) and `SyncClient` (the same
calls for scripts). Answers are typed orders; problem answers raise typed errors."""

from skipline.client.asynchronous import Client, Order, Stats, Worker
from skipline.client.errors import (
    BadRequest,
    ClientError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    RateLimited,
    Unauthorized,
    Unavailable,
    Unprocessable,
    Unreachable,
)
from skipline.client.synchronous import SyncClient

__all__ = [
    "BadRequest", "Client", "ClientError", "Conflict", "Forbidden", "NotFound", "Order",
    "PayloadTooLarge", "ProblemError", "RateLimited", "Stats", "SyncClient", "Unauthorized",
    "Unavailable", "Unprocessable", "Unreachable", "Worker",
]
