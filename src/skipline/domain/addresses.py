"""Who the client is behind a reverse proxy. The peer of a connection through a proxy is the
proxy, so per-address rate limits and logs would see one client; the proxy's
`X-Forwarded-For` names the real one, but anyone can send that header, so it is believed only
from the proxies the operator names (`forwarded_allow_ips`, as uvicorn and gunicorn call it)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from skipline.domain.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ANY = "*"
MAX_HOPS = 32
"""Addresses of X-Forwarded-For looked at, from the right; a longer header is cut there."""


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and networks (`10.0.0.0/8`, `::1`); `*` is every address."""
    networks: list[Network] = []
    for value in values:
        text = value.strip()
        if text == ANY:
            networks += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(
                f"forwarded_allow_ips: {text!r} is not an IP address or network"
            ) from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The proxies whose X-Forwarded-For is believed."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def of(cls, values: Iterable[str]) -> TrustedProxies:
        return cls(parse_networks(values))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str | None) -> bool:
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: the peer itself unless it is a trusted proxy that forwards;
        then the right-most X-Forwarded-For entry that is not itself a trusted proxy (each
        proxy appends the address it saw, so entries left of an untrusted one may be forged)."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        client = peer
        for entry in reversed(forwarded_for.split(",")[-MAX_HOPS:]):
            candidate = entry.strip()
            if _address(candidate) is None:
                break  # garbage: believe nothing further left
            client = candidate
            if not self.trusts(candidate):
                break
        return client


def _address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
