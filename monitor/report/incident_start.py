"""When did an SLO incident really start? Trace the burn back from the alert.

A burn-rate alert fires only once enough budget is gone (minutes for a spike,
many hours for a slow burn), so "the alert's condition first held" is not when
users started to suffer. For alerts that name an SLO (`slo_id`), the start is
the beginning of the unbroken run of 5-minute windows burning budget faster than
allowed (burn rate > 1) that leads up to the alert. Accurate to the 5-minute step.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Sequence

import numpy as np

from monitor.slo import SloSpec
from monitor.slo.burn_rate import burn_rate, error_ratio
from monitor.slo.evaluate import DEFAULT_MIN_EVENTS, sli_queries
from monitor.sources.prometheus import PrometheusSource, QueryError

TRACE_STEP = timedelta(minutes=5)
# Slow burns page or ticket up to a day or more after they begin (the 3d&6h ticket).
TRACE_LOOKBACK = timedelta(days=3)


def trace_back_start(timestamps_s: Sequence[float], burn_rates: Sequence[float | None],
                     condition_held_at: datetime) -> datetime | None:
    """Start of the run of burn rate > 1 that reaches `condition_held_at`; None when there is none.

    Pure. A missing point (no data) ends the run: a gap is not evidence of burning.
    """
    limit = condition_held_at.timestamp()
    indexes = [i for i, t in enumerate(timestamps_s) if t <= limit]
    start: float | None = None
    for i in reversed(indexes):
        value = burn_rates[i]
        if value is None or value <= 1.0:
            break
        # The 5m window ending at t began at t - step: that is when the burning began.
        start = timestamps_s[i] - TRACE_STEP.total_seconds()
    return None if start is None else datetime.fromtimestamp(start, tz=timezone.utc)


def slo_incident_start(source: PrometheusSource, spec: SloSpec, condition_held_at: datetime,
                       min_events: float = DEFAULT_MIN_EVENTS) -> datetime | None:
    """The traced start of the SLO incident behind an alert that began holding at `condition_held_at`."""
    step = TRACE_STEP.total_seconds()
    end = datetime.fromtimestamp(np.floor(condition_held_at.timestamp() / step) * step, tz=timezone.utc)
    start = end - TRACE_LOOKBACK
    queries = sli_queries(spec, "5m")
    try:
        results = {role: source.range(q, start, end, TRACE_STEP) for role, q in queries.items()}
    except QueryError:
        return None
    grid = np.arange(start.timestamp(), end.timestamp() + 1, step)
    columns = {}
    for role, result in results.items():
        values = np.full(len(grid), np.nan)
        for series in result.series[:1]:
            index = np.round((series.timestamps - grid[0]) / step).astype(int)
            inside = (index >= 0) & (index < len(grid))
            values[index[inside]] = series.values[inside]
        columns[role] = values
    burns: list[float | None] = []
    for i in range(len(grid)):
        if "ratio" in columns:
            ratio = None if np.isnan(columns["ratio"][i]) else float(columns["ratio"][i])
        else:
            bad, total = columns["bad"][i], columns["total"][i]
            ratio = error_ratio(None if np.isnan(bad) else bad * step, None if np.isnan(total) else total * step,
                                min_events)
        burns.append(burn_rate(ratio, spec.objective))
    return trace_back_start(grid.tolist(), burns, condition_held_at)
