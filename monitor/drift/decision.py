"""Whether columns, and a dataset, have drifted: thresholds over the statistics.

Defaults are Evidently's: a numeric column (or a histogram) drifts when psi >= 0.2
or wasserstein_norm >= 0.1; a categorical one when js >= 0.1. The dataset drifts
when the share of drifted columns reaches `dataset_drift_share` (0.5). Columns
without data are left out of the share rather than counted as "not drifted".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from monitor.config import DriftThresholds
from monitor.drift.profile import ColumnKind
from monitor.drift.statistics import ColumnDrift

DEFAULT_DATASET_DRIFT_SHARE = 0.5


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift and the dataset verdict: the CLI's JSON document."""

    columns: tuple[ColumnDrift, ...]
    drift_share: float | None
    dataset_drift: bool | None

    def to_json(self) -> dict:
        return {"columns": [c.to_json() for c in self.columns], "drift_share": self.drift_share,
                "dataset_drift": self.dataset_drift}


def column_drifted(result: ColumnDrift, thresholds: DriftThresholds) -> bool | None:
    """The column's verdict under `thresholds`; None without data."""
    if not result.has_data:
        return None
    if result.kind is ColumnKind.CATEGORICAL:
        return result.js is not None and result.js >= thresholds.js
    return ((result.psi is not None and result.psi >= thresholds.psi)
            or (result.wasserstein_norm is not None and result.wasserstein_norm >= thresholds.wasserstein_norm))


def decide(columns: list[ColumnDrift], thresholds: DriftThresholds | None = None,
           column_thresholds: Mapping[str, DriftThresholds] | None = None,
           dataset_drift_share: float = DEFAULT_DATASET_DRIFT_SHARE) -> DriftReport:
    """Apply the thresholds (per column where given) and compute the drift share."""
    thresholds = thresholds or DriftThresholds()
    column_thresholds = column_thresholds or {}
    decided = tuple(replace(c, drifted=column_drifted(c, column_thresholds.get(c.column, thresholds)))
                    for c in columns)
    verdicts = [c.drifted for c in decided if c.drifted is not None]
    if not verdicts:
        return DriftReport(decided, None, None)
    share = sum(verdicts) / len(verdicts)
    return DriftReport(decided, share, share >= dataset_drift_share)
