"""The daemon's HTTP endpoints: /metrics, /healthz (alive) and /readyz (cycles succeeding).

Whoever can reach the port can hold its threads, so the server bounds them: each
connection has a total deadline (a client that sends half a request, or one byte a
second, is cut off when it passes, not after a per-read timeout that every byte
renews), at most `max_connections` are served at once (the rest are closed at
accept), and a client hanging up is not an error worth a traceback.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor import addresses
from monitor.errors import MonitorError

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 5.0          # per read: an idle client goes after this
CONNECTION_DEADLINE_S = 10.0  # in all: a dripping client goes after this
MAX_CONNECTIONS = 32          # Prometheus scrapes and probes need a handful


class ListenError(MonitorError):
    """A listen address that cannot be parsed or bound; the message names where it came from."""


def parse_listen(address: str, where: str = "listen address") -> tuple[str, int]:
    """'127.0.0.1:9464', '[::1]:9464' or ':9464' (all interfaces) -> (host, port); ListenError names `where`."""
    try:
        return addresses.parse_listen(str(address))
    except ValueError as exc:
        raise ListenError(f"{where}: {exc}") from None


class _BoundedServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            # Full: close at once rather than queue behind slow clients.
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        # socketserver prints a traceback to stderr; a client that hung up or ran out
        # of time is routine, anything else is one line in our log.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)) or (
                isinstance(exc, OSError) and exc.errno in (errno.EBADF, errno.ENOTCONN)):
            log.debug("http client %s went away: %s", client_address[0], exc)
        else:
            log.warning("http request from %s failed: %s: %s", client_address[0], type(exc).__name__, exc)


class HealthServer:
    """Serves the registry and the readiness verdict on a background thread."""

    def __init__(self, listen: str, registry: CollectorRegistry, readiness: Callable[[], tuple[bool, str]], *,
                 where: str = "listen address", max_connections: int = MAX_CONNECTIONS,
                 read_timeout_s: float = READ_TIMEOUT_S, deadline_s: float = CONNECTION_DEADLINE_S):
        host, port = parse_listen(listen, where)
        registry_ref, readiness_ref = registry, readiness

        class Handler(BaseHTTPRequestHandler):
            timeout = read_timeout_s

            def setup(self) -> None:
                super().setup()
                # The total deadline: shutting the socket down wakes a blocked read or write.
                self._deadline = threading.Timer(deadline_s, self._cut_off)
                self._deadline.daemon = True
                self._deadline.start()

            def _cut_off(self) -> None:
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def finish(self) -> None:
                self._deadline.cancel()
                try:
                    super().finish()
                except OSError:
                    pass  # the client is gone; nothing left to flush

            def do_GET(self):  # noqa: N802 (http.server API)
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry_ref), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ready, reason = readiness_ref()
                    self._send(200 if ready else 503, (reason + "\n").encode())
                else:
                    self._send(404, b"not found\n")

            def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # scrapes every 30s are not events
                pass

        try:
            self._server = _BoundedServer((host, port), Handler, max_connections)
        except (socket.gaierror, UnicodeError) as exc:
            raise ListenError(f"{where} {listen}: cannot resolve {host!r}: {exc}") from None
        except OSError as exc:
            reason = {errno.EADDRINUSE: "the address is already in use (is another monitor running?)",
                      errno.EADDRNOTAVAIL: "no interface on this machine has that address",
                      errno.EACCES: "permission denied (ports below 1024 need privileges)"}.get(
                exc.errno, exc.strerror or str(exc))
            raise ListenError(f"{where} {listen}: cannot listen: {reason}") from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> "HealthServer":
        self._thread.start()
        log.info("serving /metrics, /healthz and /readyz on %s", self.address)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
