"""The client's address as the API uses it (per-address rate limits, logs): the peer of the
connection, or the address a trusted proxy forwards (see domain/addresses.py)."""

from __future__ import annotations

from aiohttp import hdrs, web

from skipline.domain.addresses import TrustedProxies

PROXIES = web.AppKey("skipline.proxies", TrustedProxies)
UNKNOWN_CLIENT = "unknown"


def client_address(request: web.Request) -> str:
    """`request.remote`, unless it is a proxy the settings trust and it says who it forwards."""
    proxies = request.app.get(PROXIES)
    peer = request.remote
    if proxies:
        forwarded = ",".join(request.headers.getall(hdrs.X_FORWARDED_FOR, []))
        peer = proxies.client(peer, forwarded)
    return peer or UNKNOWN_CLIENT
