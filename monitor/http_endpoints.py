"""The daemon's HTTP endpoints: /metrics, /healthz (alive) and /readyz (cycles succeeding),
and whatever else the daemon mounts (the web UI) as one WSGI application.

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
from socketserver import ThreadingMixIn
from typing import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from prometheus_client import CollectorRegistry, make_wsgi_app

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


# A WSGI application: (environ, start_response) -> body chunks.
WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


def _plain(start_response: Callable, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def endpoints_app(registry: CollectorRegistry, readiness: Callable[[], tuple[bool, str]],
                  fallback: WsgiApp | None = None) -> WsgiApp:
    """/metrics (prometheus_client's own WSGI app: OpenMetrics negotiation, gzip, `name[]` filters),
    /healthz and /readyz; any other path goes to `fallback` (the web UI), or is a 404."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/healthz":
            return _plain(start_response, "200 OK", "ok\n")
        if path == "/readyz":
            ready, reason = readiness()
            return _plain(start_response, "200 OK" if ready else "503 Service Unavailable", reason + "\n")
        if fallback is not None:
            return fallback(environ, start_response)
        return _plain(start_response, "404 Not Found", "not found\n")

    return app


class _BoundedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[WSGIRequestHandler], max_connections: int):
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
    """Serves the registry, the readiness verdict and the mounted `app` (the web UI: every other path)
    on a background thread."""

    def __init__(self, listen: str, registry: CollectorRegistry, readiness: Callable[[], tuple[bool, str]], *,
                 app: WsgiApp | None = None,
                 where: str = "listen address", max_connections: int = MAX_CONNECTIONS,
                 read_timeout_s: float = READ_TIMEOUT_S, deadline_s: float = CONNECTION_DEADLINE_S):
        host, port = parse_listen(listen, where)

        class Handler(WSGIRequestHandler):
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

            def log_message(self, *args) -> None:  # scrapes every 30s are not events
                pass

            def get_stderr(self):
                # wsgiref prints an application's traceback to stderr; ours goes to the log, one line.
                return _LogStream()

        try:
            self._server = _BoundedServer((host, port), Handler, max_connections)
            self._server.set_app(endpoints_app(registry, readiness, app))
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


class _LogStream:
    """A file-like stderr for wsgiref that logs an application error as one warning."""

    def write(self, text: str) -> None:
        line = text.strip().splitlines()[-1:] if text.strip() else []
        if line:
            log.warning("http handler error: %s", line[0])

    def flush(self) -> None:
        pass
