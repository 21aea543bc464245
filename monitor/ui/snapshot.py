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
import struct
import sys
import threading
import weakref
import zlib
from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from monitor.signals import Signal
from monitor.store import StateStore
from monitor.timeutil import from_unix, utc

NAMESPACE = "ui"
KEY = "last_cycle"
FORMAT = 2
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
    """The snapshot as bytes: `monitor-ui-snapshot <format> <cycle id>\\n` + zlib(JSON length, JSON, floats).

    Signals are stored by family (same name, label names and evidence names): each family's
    label values as columns of references into one string table, its values and evidence as
    float64 columns (None as NaN: a stored value is never NaN, `_number` makes NaN None),
    and one family index per signal for the order. A thousand SLOs' 19,000 signals share a
    few dozen families, so the JSON is small integers and decoding parses no float text."""
    strings: dict[str, int] = {}

    def ref(text: str) -> int:
        index = strings.get(text)
        if index is None:
            index = strings[text] = len(strings)
        return index

    families: dict[tuple, list[Signal]] = {}
    family_index: dict[tuple, int] = {}
    order = []
    for signal in snapshot.signals:
        shape = (signal.name, tuple(signal.labels), tuple(signal.evidence))
        if shape not in families:
            families[shape], family_index[shape] = [], len(families)
        families[shape].append(signal)
        order.append(family_index[shape])
    floats = array("d")
    described = []
    for (name, label_names, evidence_names), members in families.items():
        described.append([ref(name), [ref(n) for n in label_names], [ref(n) for n in evidence_names], len(members),
                          [ref(str(m.labels[n])) for m in members for n in label_names]])
        floats.extend(_float(m.value) for m in members)
        for key in evidence_names:
            floats.extend(_float(m.evidence[key]) for m in members)
    body = {"cycle_id": snapshot.cycle_id, "evaluated_at": snapshot.evaluated_at.timestamp(),
            "started_at": snapshot.started_at.timestamp(), "finished_at": snapshot.finished_at.timestamp(),
            "strings": list(strings), "families": described, "order": order}
    text = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    if sys.byteorder != "little":
        floats.byteswap()
    payload = struct.pack("<I", len(text)) + text + floats.tobytes()
    return _header(snapshot.cycle_id) + zlib.compress(payload, 6)


def _float(value: float | None) -> float:
    value = _number(value)
    return math.nan if value is None else value


def decode(blob: bytes) -> CycleSnapshot:
    """The snapshot `encode` wrote; SnapshotError when it is not one."""
    cycle_id, offset = _read_header(blob)
    try:
        payload = zlib.decompress(blob[offset:])
        (length,) = struct.unpack_from("<I", payload)
        body = json.loads(payload[4:4 + length])
        floats = array("d")
        floats.frombytes(payload[4 + length:])
        if sys.byteorder != "little":
            floats.byteswap()
        numbers = [None if v != v else v for v in floats]
        strings = body["strings"]
        decoded_families = []
        at = 0
        for name_ref, label_refs, evidence_refs, count, columns in body["families"]:
            name = strings[name_ref]
            label_names = [strings[i] for i in label_refs]
            evidence_names = [strings[i] for i in evidence_refs]
            width = len(label_names)
            values = numbers[at:at + count]
            at += count
            evidence_columns = []
            for _ in evidence_names:
                evidence_columns.append(numbers[at:at + count])
                at += count
            members = []
            for i in range(count):
                labels = dict(zip(label_names, [strings[r] for r in columns[i * width:(i + 1) * width]]))
                evidence = {key: column[i] for key, column in zip(evidence_names, evidence_columns)}
                members.append(Signal(name, labels, values[i], evidence))
            decoded_families.append(iter(members))
        if at != len(numbers):
            raise ValueError(f"{len(numbers) - at} numbers left over")
        signals = tuple(next(decoded_families[index]) for index in body["order"])
        return CycleSnapshot(cycle_id, from_unix(body["evaluated_at"]), from_unix(body["started_at"]),
                             from_unix(body["finished_at"]), signals)
    except (zlib.error, struct.error, StopIteration, ValueError, KeyError, IndexError, TypeError) as exc:
        raise SnapshotError(f"the UI snapshot of cycle {cycle_id} cannot be read: {exc}") from None


def save(store: StateStore, cycle_id: int, evaluated_at: datetime, started_at: datetime, finished_at: datetime,
         signals: Sequence[Signal]) -> int:
    """Store the snapshot of a successful cycle (replacing the previous one); returns its size in bytes.

    This process's cache gets the snapshot as it is, so the daemon that ran the cycle never
    decodes it; a standby replica decodes it once, on its first page view after the cycle."""
    snapshot = CycleSnapshot(cycle_id, utc(evaluated_at), utc(started_at), utc(finished_at),
                             tuple(_finite_signal(s) for s in signals))
    blob = encode(snapshot)
    store.put_blob(NAMESPACE, KEY, blob, finished_at.timestamp())
    CACHE.prime(store, snapshot)
    return len(blob)


def _finite_signal(signal: Signal) -> Signal:
    """The signal as a reader of the stored snapshot sees it: NaN and infinities are None."""
    if _number(signal.value) == signal.value and all(_number(v) == v for v in signal.evidence.values()):
        return signal
    return Signal(signal.name, signal.labels, _number(signal.value),
                  {k: _number(v) for k, v in signal.evidence.items()})


class SnapshotCache:
    """The last snapshot per store, decoded once per cycle: a refresh storm decodes it once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoded: weakref.WeakKeyDictionary[StateStore, CycleSnapshot] = weakref.WeakKeyDictionary()

    def prime(self, store: StateStore, snapshot: CycleSnapshot) -> None:
        """Remember `snapshot` as the one just saved in `store` (by this process)."""
        with self._lock:
            self._decoded[store] = snapshot

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
