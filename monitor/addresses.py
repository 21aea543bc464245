"""The syntax of the URLs and listen addresses a config names, checked at load.

A URL with no host, a port that is not a number or a listen address such as
`nonsense` would otherwise fail at the first delivery or at startup, far from the
line that caused it. Messages never echo a URL's userinfo: it may hold a password.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
_HOSTNAME = re.compile(r"(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}"
                       r"[a-zA-Z0-9])?)*\.?")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def shown_url(url: str) -> str:
    """The URL for messages, with any userinfo (user:password@) replaced by `***@`."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@]*@", r"\1***@", url)


def http_url_problem(url: str) -> str | None:
    """Why `url` is not an absolute http(s) URL with a host (and a valid port), or None."""
    if _CONTROL_OR_SPACE.search(url):
        return "must be an http:// or https:// URL without spaces or control characters"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced [IPv6] bracket
        return f"is not a valid URL: {shown_url(url)!r}"
    if parts.scheme not in ("http", "https"):
        return f"must be an http:// or https:// URL, got {shown_url(url)!r}"
    try:
        port = parts.port
    except ValueError:
        return f"has an invalid port (0-65535): {shown_url(url)!r}"
    host = parts.hostname or ""
    if not host:
        return f"has no host: {shown_url(url)!r}"
    if not _valid_host(host):
        return f"has an invalid host {host!r}"
    if port == 0:
        return f"has port 0: {shown_url(url)!r}"
    return None


def parse_listen(address: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (every interface) -> (host, port); ValueError says why not."""
    text = address.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9464, got {address!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from 0 to 65535, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address (in {address!r})") from None
    elif ":" in host:
        raise ValueError(f"write an IPv6 host in brackets, e.g. [::1]:9464, got {address!r}")
    elif host and not _valid_host(host):
        raise ValueError(f"{host!r} is not a host name or IP address (in {address!r})")
    return host or "0.0.0.0", int(port_text)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    if re.fullmatch(r"[0-9.]+", host):
        return False  # digits and dots that are not an IPv4 address (999.1.1.1)
    return _HOSTNAME.fullmatch(host) is not None
