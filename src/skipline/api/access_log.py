"""The access log: one line per HTTP request, with the method, the path, the status, the time
taken and the client address. Never the Authorization header, and never the query string
(the path alone: a query may carry what a caller considers secret)."""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from skipline.logs import ACCESS_LOGGER, fields


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access-log hook, writing structured lines to the `skipline.access` logger."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        milliseconds = round(1000 * time, 2)
        location = response.headers.get("Location", "")
        order_id = location.rsplit("/", 1)[-1] if "/orders/" in location else None
        self.logger.info(
            "%s %s %d %.1f ms", request.method, request.path, response.status, milliseconds,
            extra=fields("http.request", method=request.method, path=request.path,
                         status=response.status, duration_ms=milliseconds,
                         remote=request.remote, order_id=order_id),
        )


def access_logger() -> logging.Logger:
    return logging.getLogger(ACCESS_LOGGER)
