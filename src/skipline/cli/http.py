"""The HTTP side of the client commands (submit, status, stats, bench): the --url and --key
options, one request with its answer decoded, and every way it can fail said in one line,
with a hint where the fix is on the caller's side (a key for 401, a tier for 403)."""

from __future__ import annotations

import json
import os
from http import HTTPStatus
from typing import Any

import aiohttp
import click
from yarl import URL

from skipline.cli.errors import Failure
from skipline.cli.options import combine, option

REQUEST_TIMEOUT = 30.0
KEY_HINT = ("pass an API key with --key KEY (or SKIPLINE_KEY); an operator creates one "
            "with: KEY=$(skipline keys add NAME --tier TIER)")
TIER_HINT = ("ask for a tier your key grants (--user-type), or use a key that grants it: "
             "KEY=$(skipline keys add NAME --tier TIER)")
HINTS = {401: KEY_HINT, 403: TIER_HINT}


def check_url(value: str) -> str:
    """The --url, if it is http(s)://HOST[:PORT]; a usage error saying what to write if not."""
    if "://" not in value:
        raise click.BadParameter(
            f"{value!r} has no scheme: write it as http://{value.removeprefix('//')}",
            param_hint="--url")
    try:
        parsed = URL(value)
    except ValueError:
        parsed = URL()
    if parsed.scheme in ("http", "https") and parsed.host:
        return value
    raise click.BadParameter(f"{value!r} is not an http(s)://HOST[:PORT] URL",
                             param_hint="--url")


def _checked_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    return check_url(value)


client_options = combine(
    option("--url", default="http://127.0.0.1:8080", callback=_checked_url,
           help="Base URL of the skipline server, with its scheme (http://…)."),
    option("--key", default=None, help="API key (sent as 'Authorization: Bearer KEY')."),
)


def unreachable(url: str, error: aiohttp.ClientConnectorError) -> str:
    """'Connection refused' rather than asyncio's 'Connect call failed (address)'."""
    reason = error.os_error
    code = reason.errno
    text = os.strerror(code) if code and code > 0 else reason.strerror or str(reason)
    return f"cannot reach {url}: {text}"


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def auth_headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


async def call(
    session: aiohttp.ClientSession, method: str, base_url: str, path: str,
    body: Any = None, headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, decoded JSON) of a successful request; Failure with one line otherwise."""
    url = base_url.rstrip("/") + path
    try:
        async with session.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
            return decoded(response.status, text)
    except aiohttp.ClientConnectorError as exc:
        raise Failure(unreachable(base_url, exc)) from None
    except aiohttp.InvalidURL:
        raise Failure(f"not a valid URL: {url}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Failure(f"{method} {url} failed: {describe(exc)}") from None


async def call_once(
    method: str, base_url: str, path: str, key: str | None,
    body: Any = None, headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request in a session of its own."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth_headers(key)) as session:
        return await call(session, method, base_url, path, body, headers)


def decoded(status: int, text: str) -> tuple[int, Any]:
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        data = None
    if status < 400:
        return status, data
    raise Failure(problem_line(status, data, text), hint=HINTS.get(status))


def problem_line(status: int, data: Any, text: str) -> str:
    """`403 Forbidden: Your API key does not grant that tier — anonymous callers are not
    allowed tier 'vip'`: the status, the problem's title, then its detail when it adds one.
    An answer that is not a problem shows the start of its body instead."""
    head = f"{status} {_phrase(status)}"
    words = _problem_words(data) if isinstance(data, dict) else []
    if not words:
        return f"{head}: {' '.join(text[:200].split()) or 'no details'}"
    if len(words) == 1:
        return f"{head}: {words[0]}"
    return f"{head}: {words[0].rstrip('.')} — {words[1]}"


def _problem_words(problem: dict[str, Any]) -> list[str]:
    """The title and the detail that are there, the detail only when it differs."""
    title = str(problem.get("title") or "").strip()
    detail = str(problem.get("detail") or "").strip()
    return [part for part in dict.fromkeys((title, detail)) if part]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
