"""Faults a SaaS stand-in can be told to answer with for its next requests: an error status, or slowness."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fault:
    status: int | None = None                 # answer this instead of handling the request
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay_s: float = 0.0                       # wait this long before answering


class FaultQueue:
    """The next N requests' faults, in order; a request with none queued is handled normally."""

    def __init__(self) -> None:
        self._queue: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, count: int, fault: Fault) -> None:
        with self._lock:
            self._queue.extend([fault] * count)

    def take(self) -> Fault | None:
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)
