"""What a successful cycle leaves for the UI: its signals, definition errors and timing, in the store.

The pages render from this and the state store, never by querying Prometheus. It is
kept in the store (not in the process) because a standby replica serves the UI too.

Encoding: JSON with every string (signal names, label names and values) interned in
one table and each signal a short array, then zlib. A thousand SLOs' ~21,000 signals
repeat the same few label values ten to twenty times each; interning and compressing
keeps the blob to a few hundred kilobytes (`benchmarks/ui_bench.py` prints its size).
A small header before the compressed body carries the cycle id, so a reader can tell
a snapshot it already decoded without inflating it again.
"""

from __future__ import annotations

import json
import math
import threading
import weakref
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from monitor.signals import Signal
from monitor.store import StateStore
from monitor.timeutil import from_unix, utc

NAMESPACE = "ui"
KEY = "last_cycle"
FORMAT = 1
_MAGIC = b"monitor-ui-snapshot"


class SnapshotError(ValueError):
    """A stored snapshot that cannot be read (another format, damaged)."""


@dataclass(frozen=True)
class CycleSnapshot:
    """The last successful cycle as the UI shows it."""

    cycle_id: int
    evaluated_at: datetime
    started_at: datetime
    finished_at: datetime
    signals: tuple[Signal, ...]

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


def encode(snapshot: CycleSnapshot) -> bytes:
    """The snapshot as bytes: `monitor-ui-snapshot <format> <cycle id>\\n` + zlib(JSON)."""
    strings: dict[str, int] = {}

    def ref(text: str) -> int:
        index = strings.get(text)
        if index is None:
            index = strings[text] = len(strings)
        return index

    rows = []
    for signal in snapshot.signals:
        labels = [ref(part) for item in signal.labels.items() for part in item]
        evidence = [part for key, value in signal.evidence.items() for part in (ref(key), _number(value))]
        rows.append([ref(signal.name), labels, _number(signal.value), evidence] if evidence
                    else [ref(signal.name), labels, _number(signal.value)])
    body = {"cycle_id": snapshot.cycle_id, "evaluated_at": snapshot.evaluated_at.timestamp(),
            "started_at": snapshot.started_at.timestamp(), "finished_at": snapshot.finished_at.timestamp(),
            "strings": list(strings), "signals": rows}
    data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return _header(snapshot.cycle_id) + zlib.compress(data, 6)


def decode(blob: bytes) -> CycleSnapshot:
    """The snapshot `encode` wrote; SnapshotError when it is not one."""
    cycle_id, offset = _read_header(blob)
    try:
        body = json.loads(zlib.decompress(blob[offset:]))
        strings = body["strings"]
        signals = tuple(
            Signal(strings[row[0]],
                   {strings[row[1][i]]: strings[row[1][i + 1]] for i in range(0, len(row[1]), 2)},
                   row[2],
                   {strings[row[3][i]]: row[3][i + 1] for i in range(0, len(row[3]), 2)} if len(row) > 3 else {})
            for row in body["signals"])
        return CycleSnapshot(cycle_id, from_unix(body["evaluated_at"]), from_unix(body["started_at"]),
                             from_unix(body["finished_at"]), signals)
    except (zlib.error, ValueError, KeyError, IndexError, TypeError) as exc:
        raise SnapshotError(f"the UI snapshot of cycle {cycle_id} cannot be read: {exc}") from None


def save(store: StateStore, cycle_id: int, evaluated_at: datetime, started_at: datetime, finished_at: datetime,
         signals: Sequence[Signal]) -> int:
    """Store the snapshot of a successful cycle (replacing the previous one); returns its size in bytes."""
    blob = encode(CycleSnapshot(cycle_id, utc(evaluated_at), utc(started_at), utc(finished_at), tuple(signals)))
    store.put_blob(NAMESPACE, KEY, blob, finished_at.timestamp())
    return len(blob)


class SnapshotCache:
    """The last snapshot per store, decoded once per cycle: a refresh storm decodes it once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoded: weakref.WeakKeyDictionary[StateStore, CycleSnapshot] = weakref.WeakKeyDictionary()

    def load(self, store: StateStore) -> CycleSnapshot | None:
        """The last successful cycle's snapshot, or None before the first one."""
        blob = store.get_blob(NAMESPACE, KEY)
        if blob is None:
            return None
        blob = bytes(blob)
        cycle_id, _ = _read_header(blob)
        with self._lock:
            cached = self._decoded.get(store)
            if cached is not None and cached.cycle_id == cycle_id:
                return cached
            snapshot = decode(blob)
            self._decoded[store] = snapshot
            return snapshot


# One per process: the daemon's UI and tests share it (keyed by store, held weakly).
CACHE = SnapshotCache()


def _header(cycle_id: int) -> bytes:
    return b"%s %d %d\n" % (_MAGIC, FORMAT, cycle_id)


def _read_header(blob: bytes) -> tuple[int, int]:
    end = blob.find(b"\n", 0, 80)
    parts = blob[:end].split(b" ") if end > 0 else []
    if len(parts) != 3 or parts[0] != _MAGIC or not parts[1].isdigit() or not parts[2].isdigit():
        raise SnapshotError("the UI snapshot in the state store is not one this monitor wrote")
    if int(parts[1]) != FORMAT:
        raise SnapshotError(f"the UI snapshot is format {int(parts[1])}, this monitor reads {FORMAT} "
                            f"(it is rewritten after the next cycle)")
    return int(parts[2]), end + 1


def _number(value: float | None) -> float | None:
    """Finite floats only: NaN and infinities are "no data" (None), as everywhere."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
