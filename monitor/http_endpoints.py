"""The daemon's HTTP endpoints: /metrics, /healthz (alive) and /readyz (cycles succeeding)."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)


def parse_listen(address: str) -> tuple[str, int]:
    """'127.0.0.1:9464' or '[::1]:9464' -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be HOST:PORT, got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class HealthServer:
    """Serves the registry and the readiness verdict on a background thread."""

    def __init__(self, listen: str, registry: CollectorRegistry, readiness: Callable[[], tuple[bool, str]]):
        host, port = parse_listen(listen)
        registry_ref, readiness_ref = registry, readiness

        class Handler(BaseHTTPRequestHandler):
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

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> "HealthServer":
        self._thread.start()
        log.info("serving /metrics, /healthz and /readyz on %s", self.address)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
