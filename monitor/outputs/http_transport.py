"""One HTTP POST to an address that was already checked, with no redirects followed.

`http.client` rather than requests: it never follows redirects, and it lets us
connect to the exact address the SSRF guard approved while still sending the
URL's host name in `Host` and in TLS SNI (so certificates verify as usual).
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

# Receivers answer with a status; we keep at most this much of the body, for errors.
MAX_RESPONSE_BYTES = 4096


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]   # lower-cased names
    body: bytes


@dataclass(frozen=True)
class Target:
    """Where a URL points: scheme, host name, port and the path with its query."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def from_url(cls, url: str) -> "Target":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port, path)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._ssl_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)


def post(target: Target, address: str, body: bytes, headers: dict[str, str], timeout_s: float,
         context: ssl.SSLContext | None = None) -> HttpAnswer:
    """POST `body` to `target` via `address`; raise OSError (incl. timeouts) when no answer came."""
    if target.scheme == "https":
        conn: http.client.HTTPConnection = _PinnedHTTPSConnection(
            target.host, target.port, address, timeout_s, context or ssl.create_default_context())
    else:
        conn = _PinnedHTTPConnection(target.host, target.port, address, timeout_s)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read(MAX_RESPONSE_BYTES)
        return HttpAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer: {type(exc).__name__}") from None
    finally:
        conn.close()
