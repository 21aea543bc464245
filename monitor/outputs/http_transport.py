"""Every outbound HTTP request: SSRF-checked, to the checked address, within a total deadline, no redirects.

`http.client` rather than requests: it never follows redirects, and it lets us
connect to the exact address the SSRF guard approved while still sending the
URL's host name in `Host` and in TLS SNI (so certificates verify as usual).

A socket timeout bounds each read, not the request: a receiver that drips its
answer a byte a second would hold the caller for as long as it likes. So each
request has one deadline, from before the connect to the last byte read, and a
watchdog shuts the socket down when it passes; whatever is blocked on it then
returns at once and the request fails as timed out.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.outputs.address_guard import Resolver, checked_addresses, system_resolver

# Receivers answer with a status; we keep at most this much of the body, for errors.
MAX_RESPONSE_BYTES = 4096
# Appended to a 3xx's error: a redirect could point anywhere, including inside our network.
REDIRECT_NOTE = " (redirects are not followed)"


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]   # lower-cased names
    body: bytes

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status < 400


@dataclass(frozen=True)
class Target:
    """Where a URL points: scheme, host name, port and the path with its query."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def from_url(cls, url: str) -> "Target":
        """Raise ValueError for anything but an http(s) URL with a host (the message never holds the URL)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError("not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http(s) URL with a host")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


class _Deadline:
    """A monotonic deadline that shuts down every socket it watches when it passes."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self._ends_at = time.monotonic() + timeout_s
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.passed = False
        self._timer = threading.Timer(timeout_s, self._expire)
        self._timer.daemon = True

    def remaining_s(self) -> float:
        left = self._ends_at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete answer within {self.timeout_s:g}s")
        return left

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.passed:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            for sock in self._sockets:
                _shutdown(sock)

    def __enter__(self) -> "_Deadline":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    # shutdown, not close: it wakes a thread blocked in recv/send on the socket,
    # and the owner still closes the file descriptor itself.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to `address` (the checked one) and hands its socket to the deadline."""

    def __init__(self, host: str, port: int, address: str, deadline: _Deadline):
        super().__init__(host, port, timeout=deadline.remaining_s())
        self._address = address
        self._deadline = deadline

    def _open_socket(self) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), self._deadline.remaining_s())
        self._deadline.watch(sock)
        return sock

    def connect(self) -> None:
        self.sock = self._open_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int, address: str, deadline: _Deadline, context: ssl.SSLContext):
        super().__init__(host, port, address, deadline)
        self._ssl_context = context

    def connect(self) -> None:
        self.sock = self._ssl_context.wrap_socket(self._open_socket(), server_hostname=self.host)


def post_url(url: str, body: bytes, headers: dict[str, str], *, timeout_s: float, allow_private: bool,
             resolver: Resolver = system_resolver, context: ssl.SSLContext | None = None,
             max_response_bytes: int = MAX_RESPONSE_BYTES) -> HttpAnswer:
    """POST to a URL through the SSRF guard: the one way an output sends anything.

    Raises ValueError (not an http(s) URL with a host), BlockedAddressError (the
    guard refused it) or OSError (no complete answer; TimeoutError once `timeout_s`
    has passed). A redirect is returned as the answer it is, never followed.
    Name resolution is inside the deadline too, but only the system resolver's own
    timeout can interrupt it.
    """
    target = Target.from_url(url)
    with _Deadline(timeout_s) as deadline:
        addresses = checked_addresses(target.host, target.port, allow_private, resolver)
        return _post_within(target, addresses, body, headers, deadline, context, max_response_bytes)


def _post_within(target: Target, addresses: list[str], body: bytes, headers: dict[str, str],
                 deadline: _Deadline, context: ssl.SSLContext | None, max_response_bytes: int) -> HttpAnswer:
    """Try each checked address in turn until one answers; one deadline covers them all."""
    last: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return _post_once(target, address, body, headers, deadline, context, max_response_bytes)
        except TimeoutError:
            raise
        except OSError as exc:
            last = exc
    raise last


def _post_once(target: Target, address: str, body: bytes, headers: dict[str, str], deadline: _Deadline,
               context: ssl.SSLContext | None, max_response_bytes: int) -> HttpAnswer:
    conn: _PinnedHTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPSConnection(target.host, target.port, address, deadline,
                                      context or ssl.create_default_context())
    else:
        conn = _PinnedHTTPConnection(target.host, target.port, address, deadline)
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read(max_response_bytes)
        answer = HttpAnswer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    except (http.client.HTTPException, OSError) as exc:
        if deadline.passed:
            raise TimeoutError(f"no complete answer within {deadline.timeout_s:g}s") from None
        if isinstance(exc, OSError):
            raise
        raise OSError(f"bad HTTP answer: {type(exc).__name__}") from None
    finally:
        conn.close()
    if deadline.passed:  # the watchdog cut the answer short: what was read is not the whole of it
        raise TimeoutError(f"no complete answer within {deadline.timeout_s:g}s")
    return answer


def describe_os_error(exc: OSError) -> str:
    """A short reason for a request that got no answer (never the URL: it can be a secret)."""
    if "within" in str(exc):  # our deadline's own message says how long
        return f"timed out: {exc}"
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__
