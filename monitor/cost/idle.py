"""Where GPUs sit idle: runs of low utilisation long enough to matter (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np


@dataclass(frozen=True)
class IdlePeriod:
    model: str
    gpu: str                      # "node/gpuN"
    start: datetime
    end: datetime
    mean_utilization: float       # 0..1 over the period
    gpu_hours: float
    idle_cost_usd: float | None   # GPU cost x (1 - utilisation) over the period, at the GPU's price


def idle_runs(timestamps: np.ndarray, utilization: np.ndarray, below: float, min_duration: timedelta,
              step: timedelta) -> list[tuple[int, int]]:
    """Index ranges [i, j) of consecutive samples with utilisation below `below` lasting at least
    `min_duration`; a missing sample (NaN) ends a run (no data is not idle)."""
    low = np.nan_to_num(utilization, nan=np.inf) < below
    runs, i, n = [], 0, len(low)
    while i < n:
        if not low[i]:
            i += 1
            continue
        j = i
        while j < n and low[j] and (j == i or timestamps[j] - timestamps[j - 1] <= step.total_seconds() + 1e-6):
            j += 1
        if (j - i) * step.total_seconds() >= min_duration.total_seconds():
            runs.append((i, j))
        i = j
    return runs


def to_datetime(unix_seconds: float) -> datetime:
    return datetime.fromtimestamp(unix_seconds, tz=timezone.utc)
