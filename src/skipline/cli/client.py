"""`skipline submit|status|stats`: small HTTP clients of a running server, for scripts and
humans. Errors come back as one line: the server's problem detail, or why it was unreachable."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import click

from skipline.cli.errors import Failure
from skipline.cli.options import combine, option

REQUEST_TIMEOUT = 30.0

client_options = combine(
    option("--url", default="http://127.0.0.1:8080", help="Base URL of the skipline server."),
    option("--key", default=None, help="API key (sent as 'Authorization: Bearer KEY')."),
)


@click.command()
@client_options
@option("--duration", type=float, default=None, help="Seconds the 'simulate' handler sleeps.")
@option("--payload", default=None, metavar="JSON", help="The order's payload, as JSON.")
@option("--user-type", default=None, metavar="TIER",
        help="Ask for a tier (your key's own or a worse one).")
@option("--idempotency-key", default=None, help="Retrying with the same key returns the "
        "first order instead of creating another.")
@option("--customer", default=None, help="Your own customer the order is for: its own "
        "fair-share group (keys made with `keys add --customers` only).")
def submit(
    url: str, key: str | None, duration: float | None, payload: str | None,
    user_type: str | None, idempotency_key: str | None, customer: str | None,
) -> None:
    """Submit an order and print it as JSON."""
    body: dict[str, Any] = {}
    if payload is not None:
        body["payload"] = _parse_json(payload)
    if duration is not None:
        body["duration"] = duration
    if user_type is not None:
        body["user_type"] = user_type
    if customer is not None:
        body["customer"] = customer
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    status, order = asyncio.run(_call("POST", url, "/orders", key, body, headers))
    _print_json(order)
    if status == 200:
        click.echo("An order with this idempotency key already existed; shown above.", err=True)


@click.command()
@client_options
@click.argument("order_id")
def status(url: str, key: str | None, order_id: str) -> None:
    """Print one order as JSON."""
    _, order = asyncio.run(_call("GET", url, f"/orders/{order_id}", key))
    _print_json(order)


@click.command()
@client_options
def stats(url: str, key: str | None) -> None:
    """Print the server's statistics as JSON.

    Per tier: counts by status and wait percentiles; and the recent throughput."""
    _, report = asyncio.run(_call("GET", url, "/stats", key))
    _print_json(report)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--payload") from None


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


async def _call(
    method: str, base_url: str, path: str, key: str | None,
    body: Any = None, headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """(status, decoded JSON) of a successful request; Failure with one line otherwise."""
    sent = dict(headers or {})
    if key:
        sent["Authorization"] = f"Bearer {key}"
    url = base_url.rstrip("/") + path
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, json=body, headers=sent) as response,
        ):
            text = await response.text()
            return _decoded(response.status, text)
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror or str(exc.os_error)
        raise Failure(f"cannot reach {base_url}: {reason}") from None
    except aiohttp.InvalidURL:
        raise Failure(f"not a valid URL: {url}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Failure(f"{method} {url} failed: {exc or type(exc).__name__}") from None


def _decoded(status: int, text: str) -> tuple[int, Any]:
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        data = None
    if status < 400:
        return status, data
    if isinstance(data, dict) and "detail" in data:
        raise Failure(f"{status} {data.get('title', '')}: {data['detail']}".replace("  ", " "))
    raise Failure(f"the server answered {status}: {text[:200].strip()}")
