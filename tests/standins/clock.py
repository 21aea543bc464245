"""A clock the test moves: the outbox's retry schedule runs without real waiting."""

from __future__ import annotations

import threading
import time


class ManualClock:
    """Starts at the real time (receivers check webhook timestamps against theirs); sleep() advances it."""

    def __init__(self, start: float | None = None):
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
            self.slept.append(seconds)

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)
