"""The closed-period tables: what each series set measured in each closed hour.

A *series set* names what was measured, e.g. one model's cost queries; its name
carries a digest of those queries, so editing a model's config starts a new set
(backfilled from Prometheus) instead of mixing old and new numbers. Per set and
hour, `closed_periods` records that the hour was measured completely (an hour with
no data is recorded too: "no data" is an answer, and is not asked again), and
`period_values` holds the figures measured, one row per (figure, key), e.g.
("inferences", "v2") or ("gpu_minutes", a GPU's labels).

Values of an hour that was measured with a partial answer (a server warning) are
stored but the hour is not recorded as closed: the next cycle measures it again
and replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from monitor.store import StateStore

# SQLite's bound on host parameters is 32766 since 3.32; stay far below it.
_MAX_PARAMS = 500


@dataclass(frozen=True)
class PeriodValue:
    figure: str
    key: str
    value: float


@dataclass(frozen=True)
class PeriodTotal:
    """A figure summed over the closed hours of a window, and in how many of them it had a value."""

    total: float
    hours: int


class PeriodRepository:
    """Closed hours and their figures, per series set (tables of migration 4)."""

    def __init__(self, store: StateStore):
        self._store = store

    def closed(self, series_sets: Sequence[str], first_end: datetime, last_end: datetime) -> dict[str, set[float]]:
        """Per series set, the ends (unix seconds) of hours in [first_end, last_end] recorded as closed."""
        out: dict[str, set[float]] = {name: set() for name in series_sets}
        for names in _batches(series_sets):
            marks = ",".join("?" * len(names))
            for row in self._store.query(
                    f"SELECT series_set, period_end FROM closed_periods WHERE series_set IN ({marks}) "
                    f"AND period_end >= ? AND period_end <= ?",
                    (*names, first_end.timestamp(), last_end.timestamp())):
                out[row[0]].add(row[1])
        return out

    def save(self, measured: Mapping[str, Mapping[datetime, Iterable[PeriodValue]]], closed: bool,
             now: datetime) -> None:
        """Replace the figures of the given hours (series set -> hour end -> values), in one
        transaction; `closed` records those hours as complete."""
        with self._store.transaction() as conn:
            for series_set, hours in measured.items():
                for end, values in hours.items():
                    t = end.timestamp()
                    conn.execute("DELETE FROM period_values WHERE series_set = ? AND period_end = ?",
                                 (series_set, t))
                    conn.executemany("INSERT INTO period_values (series_set, period_end, figure, key, value) "
                                     "VALUES (?, ?, ?, ?, ?)",
                                     [(series_set, t, v.figure, v.key, v.value) for v in values])
                    if closed:
                        conn.execute("INSERT INTO closed_periods (series_set, period_end, measured_at) "
                                     "VALUES (?, ?, ?) ON CONFLICT (series_set, period_end) "
                                     "DO UPDATE SET measured_at = excluded.measured_at",
                                     (series_set, t, now.timestamp()))

    def totals(self, series_sets: Sequence[str], start: datetime, end: datetime
               ) -> dict[str, dict[tuple[str, str], PeriodTotal]]:
        """Per series set, each (figure, key) summed over the hours ending in (start, end]."""
        out: dict[str, dict[tuple[str, str], PeriodTotal]] = {name: {} for name in series_sets}
        for names in _batches(series_sets):
            marks = ",".join("?" * len(names))
            rows = self._store.query(
                f"SELECT series_set, figure, key, SUM(value), COUNT(*) FROM period_values "
                f"WHERE series_set IN ({marks}) AND period_end > ? AND period_end <= ? "
                f"GROUP BY series_set, figure, key", (*names, start.timestamp(), end.timestamp()))
            for name, figure, key, total, hours in rows:
                out[name][(figure, key)] = PeriodTotal(total, hours)
        return out

    def hourly(self, series_set: str, start: datetime, end: datetime) -> dict[float, list[PeriodValue]]:
        """One series set's figures per hour ending in (start, end], by hour end (unix seconds), oldest first."""
        out: dict[float, list[PeriodValue]] = {}
        for t, figure, key, value in self._store.query(
                "SELECT period_end, figure, key, value FROM period_values WHERE series_set = ? "
                "AND period_end > ? AND period_end <= ? ORDER BY period_end",
                (series_set, start.timestamp(), end.timestamp())):
            out.setdefault(t, []).append(PeriodValue(figure, key, value))
        return out

    def prune(self, older_than: datetime) -> int:
        """Forget hours ending before `older_than` (every set); returns how many closed hours went."""
        t = older_than.timestamp()
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM period_values WHERE period_end < ?", (t,))
            return conn.execute("DELETE FROM closed_periods WHERE period_end < ?", (t,)).rowcount


def _batches(names: Sequence[str]) -> list[Sequence[str]]:
    return [names[i:i + _MAX_PARAMS] for i in range(0, len(names), _MAX_PARAMS)]

