"""Headers every response carries, whoever renders it: no MIME sniffing (a JSON body must
never be run as a script or a page), and a `Server` that names no versions (they only help
an attacker pick an exploit)."""

from __future__ import annotations

from aiohttp import web

SERVER = "skipline"
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Server": SERVER}


def harden(response: web.StreamResponse) -> None:
    """Set the headers on a response that has not been sent yet."""
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)


def raw_header_lines() -> bytes:
    """The same headers for a response written straight to a transport."""
    return "".join(f"{name}: {value}\r\n" for name, value in SECURITY_HEADERS.items()).encode()
