"""Refuse outbound requests to addresses inside our own network (SSRF).

Every outbound URL (Slack's API and incoming webhook, webhook receivers,
Alertmanager) is written by whoever can edit the config, and the daemon often
runs next to cloud metadata services and internal APIs. So the host is resolved
first and every address it resolves to is checked, in two tiers:

- always refused, whatever the config says: cloud metadata services (AWS, GCP,
  Azure, Alibaba, ECS) and link-local, plus addresses no server should have
  (unspecified, multicast, broadcast, reserved);
- refused unless the output sets `allow_private: true`: loopback, RFC 1918,
  carrier-grade NAT (100.64/10), IPv6 unique-local (fc00::/7) and every other
  range that is not globally routable.

IPv6 forms that carry an IPv4 address (IPv4-mapped, -translated and
-compatible, 6to4, Teredo, NAT64) are judged by the IPv4 address they lead to, so 2002:7f00:1::
is loopback and 64:ff9b::a9fe:a9fe is the metadata service. The request then
goes to the address that was checked, not to a second lookup, so DNS cannot
change the answer in between (rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from enum import IntEnum
from typing import Callable

from monitor.errors import MonitorError

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedAddressError(MonitorError):
    """The URL's host resolves to an address we refuse to send to."""


class Tier(IntEnum):
    """How far an address is from "anyone on the internet"; higher is worse."""

    GLOBAL = 0      # allowed
    PRIVATE = 1     # allowed with allow_private: true
    FORBIDDEN = 2   # never allowed


# Instance metadata services: AWS/GCP/Azure/OpenStack, AWS ECS task metadata,
# AWS's IPv6 endpoint, Alibaba Cloud, Azure's WireServer (a public address).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"))
METADATA_HOSTNAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata.azure.internal"})

_FORBIDDEN_NETWORKS = tuple((ipaddress.ip_network(net), name) for net, name in (
    ("0.0.0.0/8", "unspecified (\"this host\")"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),          # includes 255.255.255.255, the broadcast address
    ("::/128", "unspecified"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
))
_PRIVATE_NETWORKS = tuple((ipaddress.ip_network(net), name) for net, name in (
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("::1/128", "loopback"),
    ("fc00::/7", "unique-local (private)"),
    ("fec0::/10", "site-local (private)"),
    ("64:ff9b:1::/48", "local-use NAT64"),
))

# IPv6 prefixes whose addresses carry an IPv4 address that the packets end up at.
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT (RFC 2765)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in seen:
            seen.append(address)
    return seen


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, translated, compatible, 6to4, Teredo, NAT64)."""
    value = int(ip)
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _SIX_TO_FOUR:
        return [ip.sixtofour] if ip.sixtofour is not None else []
    if ip in _TEREDO and ip.teredo is not None:
        server, client = ip.teredo
        return [server, client]
    if ip in _NAT64 or ip in _IPV4_TRANSLATED:
        return [ipaddress.IPv4Address(value & 0xFFFFFFFF)]
    if ip in _NAT64_LOCAL:
        # RFC 6052 lets the operator pick the prefix length (/48, /56, /64 or /96 here),
        # which decides where the IPv4 address sits (never in the reserved bits 64-71):
        # every layout is checked. One that reads an address in 0.0.0.0/8 is not the
        # layout in use (NAT64 never translates to those).
        layouts = [(_bits(value, 48, 16) << 16) | _bits(value, 72, 16),
                   (_bits(value, 56, 8) << 24) | _bits(value, 72, 24),
                   _bits(value, 72, 32), _bits(value, 96, 32)]
        return [ipaddress.IPv4Address(v) for v in dict.fromkeys(layouts) if v >> 24]
    if ip in _IPV4_COMPATIBLE and value > 1:  # ::a.b.c.d (deprecated), but not :: or ::1
        return [ipaddress.IPv4Address(value)]
    return []


def _bits(value: int, start: int, length: int) -> int:
    """`length` bits of a 128-bit value, starting `start` bits from the most significant."""
    return (value >> (128 - start - length)) & ((1 << length) - 1)


def classify(address: str | IPAddress) -> tuple[Tier, str]:
    """The tier of one address and a short name for why (e.g. "loopback")."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner:
            # Judged by where the packets go; a local-use NAT64 prefix is internal itself.
            verdicts = [classify(v4) for v4 in inner]
            if ip in _NAT64_LOCAL:
                verdicts.append((Tier.PRIVATE, "local-use NAT64"))
            tier, name = max(verdicts, key=lambda v: v[0])
            return (tier, f"{name} (via {', '.join(map(str, inner))})") if tier is not Tier.GLOBAL else (tier, name)
    if ip in METADATA_ADDRESSES:
        return Tier.FORBIDDEN, "cloud metadata"
    for network, name in _FORBIDDEN_NETWORKS:
        if ip.version == network.version and ip in network:
            return Tier.FORBIDDEN, name
    for network, name in _PRIVATE_NETWORKS:
        if ip.version == network.version and ip in network:
            return Tier.PRIVATE, name
    if not ip.is_global:
        return Tier.PRIVATE, "not globally routable"
    return Tier.GLOBAL, "global"


def refusal_reason(address: str, allow_private: bool = False) -> str | None:
    """Why an address is refused, or None when it may be sent to."""
    tier, name = classify(address)
    if tier is Tier.FORBIDDEN or (tier is Tier.PRIVATE and not allow_private):
        return name
    return None


def checked_addresses(host: str, port: int, allow_private: bool, resolver: Resolver = system_resolver) -> list[str]:
    """The addresses to connect to; raise BlockedAddressError if any is refused."""
    if host.lower().rstrip(".") in METADATA_HOSTNAMES:
        raise BlockedAddressError(f"{host} is a cloud metadata service; refused even with allow_private")
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise BlockedAddressError(f"cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from None
    if not addresses:
        raise BlockedAddressError(f"{host} resolves to no address")
    for address in addresses:
        tier, name = classify(address)
        # All or nothing: a name resolving to one public and one private address
        # could otherwise be steered to the private one.
        if tier is Tier.FORBIDDEN:
            raise BlockedAddressError(f"{host} resolves to {address}, a {name} address; "
                                      f"refused even with allow_private")
        if tier is Tier.PRIVATE and not allow_private:
            raise BlockedAddressError(f"{host} resolves to {address}, a {name} address; "
                                      f"set allow_private: true on the output to allow it")
    return addresses
