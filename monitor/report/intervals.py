"""Runs of time where a sampled series stays below a threshold or has no sample.

Pure: used for GPU idle periods (utilisation below a floor) and "no data" periods
(no traffic, no samples), so a quiet week is told apart from a healthy one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Sequence


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def runs_below(timestamps_s: Sequence[float], values: Sequence[float | None], threshold: float,
               step: timedelta, min_duration: timedelta, missing_counts: bool = True,
               until: datetime | None = None) -> list[Interval]:
    """Maximal runs of samples with value < threshold (or None, when `missing_counts`).

    `timestamps_s` is a regular grid `step` apart. A sample's value is taken to hold
    until the next sample, so a run is [first low sample, first sample after it that
    is not low); a run still open at the end closes at `until` (default: last sample
    + step). Accurate to one step. Runs shorter than `min_duration` are dropped.
    """
    runs: list[Interval] = []
    run_start: float | None = None
    for t, value in zip(timestamps_s, values):
        low = (value is None and missing_counts) or (value is not None and value < threshold)
        if low and run_start is None:
            run_start = t
        elif not low and run_start is not None:
            _keep(runs, run_start, t, min_duration)
            run_start = None
    if run_start is not None and len(timestamps_s):
        end_t = until.timestamp() if until is not None else timestamps_s[-1] + step.total_seconds()
        _keep(runs, run_start, end_t, min_duration)
    return runs


def _keep(runs: list[Interval], start_s: float, end_s: float, min_duration: timedelta) -> None:
    if end_s - start_s >= min_duration.total_seconds():
        runs.append(Interval(_at(start_s), _at(end_s)))


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
