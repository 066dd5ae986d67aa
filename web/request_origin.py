"""Where a request comes from: the client's address.

The address is the TCP peer's.  Behind a reverse proxy every peer is the proxy,
so the proxy's ``X-Forwarded-For`` says who the client was — but anybody can
send that header, so it is believed only when the peer is a configured trusted
proxy, and only as far as the hops our own proxies appended: read from the
right, the first address that is not a trusted proxy is the client.  The left
part of the header is whatever the client claimed and is never used; otherwise
a client could dodge a rate limit or put someone else's address in the audit log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

from aiohttp import web

from web.state import SETTINGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ADDRESS_KEY = web.RequestKey("client_address", str)


@lru_cache(maxsize=8)
def proxy_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in proxies)


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address: Address, proxies: Iterable[Network]) -> bool:
    return any(address in network for network in proxies)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]
) -> str:
    """The client's address from the peer and the X-Forwarded-For headers (pure)."""
    peer_address = _address(peer or "")
    if peer_address is None:
        return peer or ""
    if not forwarded_for or not _trusted(peer_address, proxies):
        return str(peer_address)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # a proxy of ours would not write that: stop at the last sure hop
        client = address
        if not _trusted(address, proxies):
            break
    return str(client)


def address_of(request: web.Request) -> str:
    """The client's address (computed once per request)."""
    known = request.get(ADDRESS_KEY)
    if known is None:
        proxies = proxy_networks(tuple(request.app[SETTINGS].security_trusted_proxies))
        known = client_address(
            request.remote, request.headers.getall("X-Forwarded-For", []), proxies
        )
        request[ADDRESS_KEY] = known
    return known
