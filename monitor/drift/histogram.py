"""Drift between two windows of a Prometheus histogram (`..._bucket{le}` series).

Input is each window's per-bucket `increase()` (so counter resets are already
handled by Prometheus), cumulative by `le` and ending with `+Inf`. Extrapolation in
`increase()` can leave a bucket a hair below the one before it, so the cumulative
counts are made monotonic first, as `histogram_quantile` does.

Exact on buckets: psi, js, chi2 and chi2_pvalue (the buckets are the bins and the
categories). Approximations, flagged in `ColumnDrift.approximate`: ks is the largest
CDF gap at the bucket edges (a lower bound of the sample KS), its p-value uses the
window counts as n; wasserstein places each bucket's mass at its midpoint, the
lowest bucket's lower bound being 0 when its upper bound is positive and the +Inf
bucket at the highest finite edge (Prometheus' `histogram_quantile` conventions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from monitor.drift.profile import ColumnKind, DriftError
from monitor.drift.ks_pvalue import ks_asymptotic_pvalue
from monitor.drift.statistics import (MIN_STD_FOR_NORM, ColumnDrift, categorical_statistics, no_data,
                                      sample_shortage)

APPROXIMATE_STATISTICS = ("ks", "ks_pvalue", "wasserstein", "wasserstein_norm")


class HistogramError(DriftError):
    """A histogram's buckets cannot be used (no +Inf bucket, unparsable le)."""


@dataclass(frozen=True)
class BucketCounts:
    """Observations per bucket in one window: bucket i is (upper_bounds[i-1], upper_bounds[i]]."""

    upper_bounds: np.ndarray   # ascending finite `le` values; the last bucket is (upper_bounds[-1], +Inf)
    counts: np.ndarray         # float64, len(upper_bounds) + 1 (increase() is not an integer)

    @property
    def total(self) -> float:
        return float(self.counts.sum())


def parse_le(text: str) -> float:
    """A bucket's `le` label as a float ("+Inf", "0.5", "1e+06")."""
    try:
        return float(text)
    except ValueError:
        raise HistogramError(f"bucket label le={text!r} is not a number") from None


def bucket_counts(cumulative_by_le: Mapping[str, float | None]) -> BucketCounts:
    """Per-bucket counts from one window's cumulative counts keyed by `le`.

    A missing (None/NaN) finite bucket is left out, merging it into its neighbour;
    a missing +Inf bucket is an error, since it is the total.
    """
    points = []
    for le, value in cumulative_by_le.items():
        bound = parse_le(le)
        if value is None or math.isnan(value):
            if math.isinf(bound):
                raise HistogramError("the +Inf bucket has no value in this window")
            continue
        points.append((bound, float(value)))
    points.sort()
    if not points or not math.isinf(points[-1][0]) or points[-1][0] < 0:
        raise HistogramError("histogram has no le=\"+Inf\" bucket")
    bounds = np.array([b for b, _ in points[:-1]], dtype=np.float64)
    cumulative = np.maximum.accumulate(np.array([v for _, v in points], dtype=np.float64).clip(min=0))
    return BucketCounts(bounds, np.diff(cumulative, prepend=0.0))


def on_common_bounds(counts: BucketCounts, bounds: np.ndarray) -> BucketCounts:
    """The same window's counts on a coarser set of upper bounds (a subset of its own)."""
    cumulative = np.cumsum(counts.counts)
    keep = np.searchsorted(counts.upper_bounds, bounds)
    merged = np.append(cumulative[keep], cumulative[-1])
    return BucketCounts(bounds, np.diff(merged, prepend=0.0))


def bucket_midpoints(upper_bounds: np.ndarray) -> np.ndarray:
    """Where each bucket's mass sits for the Wasserstein approximation (see the module doc)."""
    if upper_bounds.size == 0:
        return np.zeros(1)
    first = upper_bounds[0] / 2 if upper_bounds[0] > 0 else upper_bounds[0]
    inner = (upper_bounds[:-1] + upper_bounds[1:]) / 2
    return np.concatenate([[first], inner, [upper_bounds[-1]]])


def histogram_drift(reference: BucketCounts, current: BucketCounts, column: str = "prediction",
                    min_samples: int = 1) -> ColumnDrift:
    """Drift of `current` against `reference` over their common buckets."""
    kind = ColumnKind.HISTOGRAM
    if not np.array_equal(reference.upper_bounds, current.upper_bounds):
        # A changed bucket layout: compare on the edges both windows have.
        common = np.intersect1d(reference.upper_bounds, current.upper_bounds)
        reference, current = on_common_bounds(reference, common), on_common_bounds(current, common)
    n_reference, n_current = reference.total, current.total
    shortage = sample_shortage(round(n_reference), round(n_current), min_samples)
    if shortage or n_reference <= 0 or n_current <= 0:
        return no_data(column, kind, shortage or "no observations", round(n_reference), round(n_current))
    exact = categorical_statistics(column, kind, reference.counts, current.counts)
    p = reference.counts / n_reference
    q = current.counts / n_current
    cdf_gap = np.abs(np.cumsum(p) - np.cumsum(q))[:-1]
    ks = float(cdf_gap.max()) if cdf_gap.size else 0.0
    midpoints = bucket_midpoints(reference.upper_bounds)
    wasserstein = float(np.sum(cdf_gap * np.diff(midpoints)))
    mean = float(np.sum(p * midpoints))
    std = math.sqrt(float(np.sum(p * (midpoints - mean) ** 2)))
    return replace(exact, ks=ks, ks_pvalue=ks_asymptotic_pvalue(ks, round(n_reference), round(n_current)),
                   wasserstein=wasserstein, wasserstein_norm=wasserstein / max(std, MIN_STD_FOR_NORM),
                   approximate=APPROXIMATE_STATISTICS)
