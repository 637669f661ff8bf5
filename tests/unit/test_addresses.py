"""Who the client is behind a proxy: X-Forwarded-For is believed only from trusted proxies,
read from the right, and never past an entry that is not an address."""

from __future__ import annotations

import pytest

from skipline.domain.addresses import TrustedProxies
from skipline.domain.errors import ConfigError

PROXIES = TrustedProxies.of(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.1.2.3", "203.0.113.7", "203.0.113.7"),
        ("10.1.2.3", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the proxy saw .7
        ("10.1.2.3", "203.0.113.7, 10.9.9.9", "203.0.113.7"),  # a chain of our proxies
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("192.0.2.1", "203.0.113.7", "192.0.2.1"),  # not a proxy of ours: header ignored
        ("10.1.2.3", None, "10.1.2.3"),
        ("10.1.2.3", "", "10.1.2.3"),
        ("10.1.2.3", "not-an-address", "10.1.2.3"),
        ("10.1.2.3", "203.0.113.7, garbage", "10.1.2.3"),
        ("10.1.2.3", "10.0.0.1, 10.0.0.2", "10.0.0.1"),  # only proxies: the left-most
    ],
)
def test_the_client_is_the_rightmost_untrusted_address(
    peer: str, forwarded: str | None, client: str,
) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_no_trusted_proxies_means_the_peer_always() -> None:
    assert not TrustedProxies.of([])
    assert TrustedProxies.of([]).client("10.1.2.3", "203.0.113.7") == "10.1.2.3"


def test_a_star_trusts_everyone() -> None:
    assert TrustedProxies.of(["*"]).client("192.0.2.1", "203.0.113.7") == "203.0.113.7"


def test_a_name_is_not_an_address() -> None:
    with pytest.raises(ConfigError, match=r"'proxy\.local' is not an IP address or network"):
        TrustedProxies.of(["proxy.local"])
