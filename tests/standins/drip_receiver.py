"""A hostile HTTP receiver on loopback: reads the whole request, then drips its answer a byte at a time.

Every socket read it makes would succeed within any per-read timeout, so only a
total deadline ends the request. It records each connection: when it was
accepted, when the request was fully read, and when the client hung up (seen as
EOF or a reset while dripping), so a test can measure how long the sender held on.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"


@dataclass
class DripConnection:
    accepted_at: float
    request_read_at: float | None = None
    closed_at: float | None = None       # when the client hung up; None while it holds on
    bytes_sent: int = 0

    def held_s(self) -> float | None:
        return None if self.closed_at is None or self.request_read_at is None \
            else self.closed_at - self.request_read_at


class DripReceiver:
    """`interval_s` between answer bytes; with `headers_first` the status and headers go at once."""

    def __init__(self, interval_s: float = 1.0, headers_first: bool = False):
        self.interval_s = interval_s
        self.headers_first = headers_first
        self.connections: list[DripConnection] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> "DripReceiver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/monitor"

    def holding_at(self, at: float) -> bool:
        """Whether a sender was held mid-answer at wall time `at`."""
        with self._lock:
            return any(c.request_read_at is not None and c.request_read_at <= at
                       and (c.closed_at is None or at <= c.closed_at) for c in self.connections)

    def finished(self) -> list[DripConnection]:
        with self._lock:
            return [c for c in self.connections if c.closed_at is not None and c.request_read_at is not None]

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            connection = DripConnection(time.time())
            with self._lock:
                self.connections.append(connection)
            threading.Thread(target=self._serve, args=(client, connection), daemon=True).start()

    def _serve(self, client: socket.socket, connection: DripConnection) -> None:
        try:
            if not _read_request(client):
                return
            connection.request_read_at = time.time()
            answer = ANSWER
            if self.headers_first:
                head, _, body = ANSWER.partition(b"\r\n\r\n")
                client.sendall(head + b"\r\n\r\n")
                answer = body
            client.settimeout(self.interval_s)
            for i in range(len(answer)):
                client.sendall(answer[i:i + 1])
                connection.bytes_sent += 1
                try:
                    if client.recv(1) == b"":  # the sender hung up
                        return
                except socket.timeout:
                    pass  # still there: next byte
        except OSError:
            return
        finally:
            connection.closed_at = time.time()
            client.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


def _read_request(client: socket.socket) -> bool:
    """Read one request (headers and a Content-Length body); False if the client went away first."""
    client.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = client.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True
