"""Refuse outbound requests to addresses inside our own network (SSRF).

A webhook URL is written by whoever can edit the config or a subscription, and the
daemon often runs next to cloud metadata services and internal APIs. So the host
is resolved first and every address it resolves to must be globally routable:
loopback, private (RFC 1918, ULA), link-local (including 169.254.169.254, the
metadata service of AWS, GCP and Azure), carrier-grade NAT (100.64/10, Alibaba's
metadata), multicast and reserved ranges are refused unless the subscription sets
`allow_private: true`. The request then goes to the address that was checked, not
to a second lookup, so DNS cannot change the answer in between (rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable

from monitor.errors import MonitorError

Resolver = Callable[[str, int], list[str]]


class BlockedAddressError(MonitorError):
    """The URL's host resolves to an address we refuse to send to."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def refusal_reason(address: str) -> str | None:
    """Why an address is refused, or None when it is globally routable."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for test, name in ((ip.is_loopback, "loopback"), (ip.is_link_local, "link-local (cloud metadata)"),
                       (ip.is_private, "private"), (ip.is_multicast, "multicast"),
                       (ip.is_unspecified, "unspecified"), (ip.is_reserved, "reserved")):
        if test:
            return name
    if not ip.is_global:
        return "not globally routable"
    return None


def checked_addresses(host: str, port: int, allow_private: bool, resolver: Resolver = system_resolver) -> list[str]:
    """The addresses to connect to; raise BlockedAddressError if any is refused."""
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        raise BlockedAddressError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    if not addresses:
        raise BlockedAddressError(f"{host} resolves to no address")
    if allow_private:
        return addresses
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None:
            # All or nothing: a name resolving to one public and one private address
            # could otherwise be steered to the private one.
            raise BlockedAddressError(f"{host} resolves to {address}, a {reason} address; "
                                      f"set allow_private: true on the subscription to allow it")
    return addresses
