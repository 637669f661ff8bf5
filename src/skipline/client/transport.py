"""One HTTP exchange with retries: connection errors, 503 and 429 are retried (honouring
Retry-After, else exponential backoff) until the call's deadline; problem+json answers become
typed exceptions. Requests that must not be repeated blindly say so (`retry_sent=False`)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from skipline.api.schemas import Problem
from skipline.client.errors import ProblemError, Unreachable, problem_error

RETRIED_STATUSES = frozenset({429, 503})
FIRST_BACKOFF = 0.1
LONGEST_BACKOFF = 5.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    retry_after: str | None = None


@dataclass(slots=True)
class Call:
    """One logical request: its method, path, body and headers (the same on every try)."""

    method: str
    path: str
    json_body: Any = None
    headers: dict[str, str] | None = None
    retry_sent: bool = True
    """Repeat it after a connection broke mid-request (it may have taken effect): only for
    requests that are safe to repeat (GETs, and POSTs with an Idempotency-Key)."""
    read_timeout: float | None = None
    """Seconds the server may take to answer (a long wait), instead of the client's timeout."""


class Transport:
    def __init__(self, base_url: str, key: str | None, deadline: float, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.deadline = deadline
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _session_now(self) -> aiohttp.ClientSession:
        """Created on first use, on the running loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def send(self, call: Call) -> Answer:
        """The answer of the first try that is not retried; raises ProblemError or
        Unreachable. Tries until `deadline` seconds after the first."""
        give_up_at = time.monotonic() + self.deadline
        attempt = 0
        while True:
            failure, wait = await self._try(call, attempt)
            if isinstance(failure, Answer):
                return failure
            attempt += 1
            if time.monotonic() + wait > give_up_at:
                raise failure
            await asyncio.sleep(wait)

    async def _try(self, call: Call, attempt: int) -> tuple[Answer | ClientFailure, float]:
        """(answer, 0) when done; else (the error to raise if no retry is left, the wait)."""
        backoff = min(LONGEST_BACKOFF, FIRST_BACKOFF * 2 ** attempt)
        try:
            answer = await self._exchange(call)
        except aiohttp.ClientConnectorError as error:  # nothing was sent
            return Unreachable(f"cannot reach {self.base_url}: {reason(error)}"), backoff
        except aiohttp.InvalidURL as error:
            raise Unreachable(f"not a valid URL: {error}") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            failure = Unreachable(f"{call.method} {self.base_url}{call.path} failed: "
                                  f"{str(error) or type(error).__name__}")
            if not call.retry_sent:
                raise failure from error
            return failure, backoff
        if answer.status < 400:
            return answer, 0.0
        problem = decode_problem(answer)
        if answer.status in RETRIED_STATUSES:
            return problem, problem.retry_after if problem.retry_after else backoff
        raise problem

    async def _exchange(self, call: Call) -> Answer:
        headers = dict(call.headers or {})
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        timeout = aiohttp.ClientTimeout(total=call.read_timeout or self.timeout)
        async with self._session_now().request(
            call.method, self.base_url + call.path, json=call.json_body, headers=headers,
            timeout=timeout, allow_redirects=False,
        ) as response:
            body = await response.read()
            return Answer(response.status, body, response.headers.get("Retry-After"))


ClientFailure = ProblemError | Unreachable


def reason(error: aiohttp.ClientConnectorError) -> str:
    """'Connection refused' rather than asyncio's 'Connect call failed (address)'."""
    code = error.os_error.errno
    return os.strerror(code) if code and code > 0 else error.os_error.strerror or str(error)


def decode_problem(answer: Answer) -> ProblemError:
    try:
        problem = msgspec.json.decode(answer.body, type=Problem)
    except msgspec.DecodeError:
        problem = Problem("about:blank", f"HTTP {answer.status}", answer.status,
                          answer.body[:200].decode("utf-8", "replace"))
    return problem_error(problem, seconds(answer.retry_after))


def seconds(header: str | None) -> float | None:
    """A Retry-After in seconds (the HTTP-date form is not used by skipline)."""
    try:
        return None if header is None else max(0.0, float(header))
    except ValueError:
        return None
