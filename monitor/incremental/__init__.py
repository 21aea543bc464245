"""Closed periods: measurements of whole past hours, kept in the state store.

A closed hour's measurements never change, so each is queried once and long
windows are sums of them. `periods.py` is the hour arithmetic, `repository.py`
owns the tables (migration 4).
"""

from __future__ import annotations

from monitor.incremental.periods import HOUR, SETTLE, closed_boundary, contiguous_runs, hour_ends
from monitor.incremental.repository import PeriodRepository, PeriodValue

__all__ = ["HOUR", "SETTLE", "PeriodRepository", "PeriodValue", "closed_boundary", "contiguous_runs", "hour_ends"]
