"""One exception hierarchy. HTTP status codes are chosen only at the API edge."""

from __future__ import annotations


class SkiplineError(Exception):
    """Something went wrong in skipline."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip().splitlines()[0]
        super().__init__(self.detail)


class OrderNotFound(SkiplineError):
    """No such order."""


class OrderNotCancellable(SkiplineError):
    """The order has already started or finished and can no longer be cancelled."""


class OrderNotRequeueable(SkiplineError):
    """Only a failed or cancelled order can be queued again."""


class CallbackNotAllowed(SkiplineError):
    """That callback URL is not allowed."""


class TierNotAllowed(SkiplineError):
    """Your API key does not grant that tier."""


class NotAuthenticated(SkiplineError):
    """A valid API key is required."""


class AdminRequired(SkiplineError):
    """An admin API key is required."""


class InvalidApiKey(SkiplineError):
    """The API key is unknown or revoked."""


class QueueFull(SkiplineError):
    """The queue is full; retry later."""

    def __init__(self, detail: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class CustomerNotAllowed(SkiplineError):
    """Only API keys made with --customers may name a customer."""


class CustomerQueueFull(SkiplineError):
    """This customer has max_queued_per_customer orders queued; retry later."""

    def __init__(self, detail: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RateLimited(SkiplineError):
    """Too many orders from this caller; slow down."""

    def __init__(self, detail: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class StoreUnavailable(SkiplineError):
    """The order store is unavailable; retry later."""

    def __init__(self, detail: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class OutcomeUnknown(StoreUnavailable):
    """Whether the order was stored is not known: the store went away while storing it."""

    def __init__(self, order_id: str, detail: str | None = None, retry_after: float = 1.0) -> None:
        """`order_id`: the order that may or may not have been stored. Telling the client its
        id, instead of a bare "unavailable", lets it ask for that order later rather than guess
        (a bare 503 would invite a retry without a key, which could store it twice)."""
        super().__init__(detail, retry_after)
        self.order_id = order_id


class ShuttingDown(SkiplineError):
    """The service is shutting down and accepts no new orders."""


class KeyExists(SkiplineError):
    """An API key with that name already exists."""


class ConfigError(SkiplineError):
    """The configuration is invalid."""


class HandlerNotFound(SkiplineError):
    """The handler could not be imported."""


class InvalidOrder(SkiplineError):
    """The order is not valid."""


class InvalidKeyName(SkiplineError):
    """The API key name is not valid."""


class IdempotencyKeyReused(SkiplineError):
    """This Idempotency-Key was already used for a different request."""
