"""Drift statistics of a current sample against a fitted reference profile.

The conventions are those of the tools people check our numbers against:

- ks: the statistic of `scipy.stats.ks_2samp`; ks_pvalue: its `method="asymp"` p-value,
  `kstwo.sf(ks, round(n*m/(n+m)))` (fast at large n: `monitor.drift.ks_pvalue`).
- wasserstein: `scipy.stats.wasserstein_distance(reference, current)`;
  wasserstein_norm = wasserstein / max(std(reference), 0.001) (Evidently's normed form).
- psi and js bins: interior edges = unique(numpy.quantile(reference, [0.1, ..., 0.9])),
  bin(v) = searchsorted(edges, v, side="right"), so the outer bins are open-ended.
  psi = sum (q - p) ln(q / p) with zero proportions replaced by 0.0001;
  js = `scipy.spatial.distance.jensenshannon(p, q, base=2)`.
- categorical: chi2 and chi2_pvalue of `scipy.stats.chi2_contingency` on the 2 x k table
  over the union of categories (Yates' correction when k = 2, as scipy does); js and psi on
  the category proportions.

NaN and infinite values are dropped and counted. A side with no values, or fewer
than `min_samples`, is "no data": every statistic None, never 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

from monitor.drift.ks_pvalue import ks_asymptotic_pvalue
from monitor.drift.profile import (CategoricalReference, ColumnKind, DriftError, ReferenceProfile, category_values,
                                   column_kind, frame_columns, numeric_values, present_count)
from monitor.drift.sorted_numpy import js_from_proportions, psi_from_proportions

if TYPE_CHECKING:
    from monitor.drift.profile import Column, Frame

# Evidently's floor for the reference std in the normed Wasserstein distance.
MIN_STD_FOR_NORM = 0.001


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift statistics; None where a statistic does not apply or there is no data."""

    column: str
    kind: ColumnKind
    n_reference: int
    n_current: int
    psi: float | None = None
    js: float | None = None
    ks: float | None = None
    ks_pvalue: float | None = None
    wasserstein: float | None = None
    wasserstein_norm: float | None = None
    chi2: float | None = None
    chi2_pvalue: float | None = None
    # Set by monitor.drift.decision; None when there is no data to decide on.
    drifted: bool | None = None
    n_reference_dropped: int = 0
    n_current_dropped: int = 0
    # Why the statistics are None, when they are.
    no_data: str | None = None
    # Statistics that approximate their sample definition (histogram KS and Wasserstein).
    approximate: tuple[str, ...] = ()

    @property
    def has_data(self) -> bool:
        return self.no_data is None

    def to_json(self) -> dict:
        """The CLI's JSON entry: the contract keys first, then extras."""
        data = asdict(self)
        data["kind"] = self.kind.value
        data["approximate"] = list(self.approximate)
        return data


def no_data(column: str, kind: ColumnKind, reason: str, n_reference: int = 0, n_current: int = 0,
            n_reference_dropped: int = 0, n_current_dropped: int = 0) -> ColumnDrift:
    """A column whose statistics cannot be computed, and why."""
    return ColumnDrift(column, kind, n_reference, n_current, n_reference_dropped=n_reference_dropped,
                       n_current_dropped=n_current_dropped, no_data=reason)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def chi2_contingency_2xk(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """chi2 and p-value of `scipy.stats.chi2_contingency` on the table [reference; current].

    Categories absent from both rows must already be dropped (scipy refuses zero
    expected frequencies). One category left: chi2 0, p 1 (scipy's degenerate case).
    """
    observed = np.vstack([reference_counts, current_counts]).astype(np.float64)
    dof = observed.shape[1] - 1
    if dof == 0:
        return 0.0, 1.0
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    if dof == 1:
        # Yates' continuity correction, bounded by the difference (scipy gh-13875).
        difference = expected - observed
        observed = observed + np.minimum(0.5, np.abs(difference)) * np.sign(difference)
    chi2 = float(np.sum((observed - expected) ** 2 / expected))
    from scipy.special import chdtrc  # only categorical columns need it: scipy is half a second of start-up

    return chi2, float(chdtrc(dof, chi2))


def compare_categorical(column: str, reference: CategoricalReference, series: Column,
                        min_samples: int = 1) -> ColumnDrift:
    """chi2, JS and PSI of a categorical column over the union of categories."""
    values, n_dropped = category_values(series)
    current_categories, current_counts = np.unique(values.astype(str), return_counts=True) if len(values) \
        else (np.array([], dtype=object), np.array([], dtype=np.int64))
    kind = ColumnKind.CATEGORICAL
    shortage = sample_shortage(reference.n, int(len(values)), min_samples)
    if shortage:
        return no_data(column, kind, shortage, reference.n, len(values), reference.n_dropped, n_dropped)
    union = list(reference.categories) + sorted(set(map(str, current_categories)) - set(reference.categories))
    position = {category: i for i, category in enumerate(union)}
    ref_counts = np.zeros(len(union))
    ref_counts[:len(reference.categories)] = reference.counts
    cur_counts = np.zeros(len(union))
    for category, count in zip(current_categories, current_counts):
        cur_counts[position[str(category)]] = count
    return categorical_statistics(column, kind, ref_counts, cur_counts, reference.n_dropped, n_dropped)


def categorical_statistics(column: str, kind: ColumnKind, reference_counts: np.ndarray,
                           current_counts: np.ndarray, n_reference_dropped: int = 0,
                           n_current_dropped: int = 0) -> ColumnDrift:
    """chi2, JS and PSI from two count vectors over the same categories (or buckets)."""
    n_reference = float(reference_counts.sum())
    n_current = float(current_counts.sum())
    present = (reference_counts > 0) | (current_counts > 0)
    chi2, chi2_pvalue = chi2_contingency_2xk(reference_counts[present], current_counts[present])
    p = np.ascontiguousarray(reference_counts / n_reference, dtype=np.float64)
    q = np.ascontiguousarray(current_counts / n_current, dtype=np.float64)
    return ColumnDrift(column, kind, round(n_reference), round(n_current),
                       psi=_finite_or_none(psi_from_proportions(p, q)),
                       js=_finite_or_none(js_from_proportions(p, q)),
                       chi2=_finite_or_none(chi2), chi2_pvalue=_finite_or_none(chi2_pvalue),
                       n_reference_dropped=n_reference_dropped, n_current_dropped=n_current_dropped)


def sample_shortage(n_reference: int, n_current: int, min_samples: int) -> str | None:
    """Why a pair of windows is "no data" (empty, or under min_samples), or None."""
    if n_current == 0:
        return "no values in the current sample"
    if n_reference == 0:
        return "no values in the reference"
    if n_current < min_samples:
        return f"{n_current} current values, fewer than min_samples={min_samples}"
    if n_reference < min_samples:
        return f"{n_reference} reference values, fewer than min_samples={min_samples}"
    return None


def compare_numeric(profile: ReferenceProfile, columns: list[str], current: np.ndarray,
                    min_samples: int = 1, compiled: bool = True) -> list[ColumnDrift]:
    """Numeric drift of `current` (columns x rows float64, rows in any order) against the profile.

    `current` is sorted in place, row by row (numpy's sort), then one parallel kernel
    call computes every column's KS, Wasserstein, PSI and JS. `compiled=False` uses
    the numpy kernels instead (`monitor.drift.sorted_numpy`): same numbers, no numba
    start-up, for a process that compares once.
    """
    reference = profile.numeric
    if current.ndim != 2 or current.shape[0] != len(columns):
        raise DriftError("current must be a (columns x rows) array with one row per column")
    if not columns:
        return []
    current.sort(axis=1)
    indices = np.array([reference.index(c) for c in columns], dtype=np.int64)
    if compiled:
        from monitor.drift.kernels import numeric_drift_kernel as kernel
    else:
        from monitor.drift.sorted_numpy import numeric_drift as kernel
    ks, wasserstein, psi, js, _, current_n = kernel(
        reference.sorted_values, reference.offsets, indices, reference.edges, reference.edge_counts,
        reference.bin_counts, reference.n, current)
    sample_sizes = np.diff(reference.offsets)[indices]
    results = []
    for c, (name, i) in enumerate(zip(columns, indices)):
        n_ref, n_cur = int(reference.n[i]), int(current_n[c])
        ref_dropped, cur_dropped = int(reference.n_dropped[i]), int(current.shape[1] - n_cur)
        shortage = sample_shortage(n_ref, n_cur, min_samples)
        if shortage:
            results.append(no_data(name, ColumnKind.NUMERIC, shortage, n_ref, n_cur, ref_dropped, cur_dropped))
            continue
        norm = wasserstein[c] / max(float(reference.std[i]), MIN_STD_FOR_NORM)
        results.append(ColumnDrift(
            name, ColumnKind.NUMERIC, n_ref, n_cur,
            psi=_finite_or_none(psi[c]), js=_finite_or_none(js[c]), ks=_finite_or_none(ks[c]),
            # The p-value's n is the KS sample's: the subsample's size when the reference was subsampled.
            ks_pvalue=ks_asymptotic_pvalue(ks[c], int(sample_sizes[c]), n_cur),
            wasserstein=_finite_or_none(wasserstein[c]), wasserstein_norm=_finite_or_none(norm),
            n_reference_dropped=ref_dropped, n_current_dropped=cur_dropped))
    return results


def compare_to_profile(profile: ReferenceProfile, frame: Frame, columns: Iterable[str] | None = None,
                       min_samples: int = 1, compiled: bool = True) -> list[ColumnDrift]:
    """Every requested column's drift (default: the profile's columns), in the requested order.

    `compiled`: numba's kernels (a long-running process) or numpy's (one comparison per
    process, where numba's start-up would dominate); see `compare_numeric`.

    A column missing from either side, or whose kind differs between them, is a
    no-data entry saying so rather than an error: the other columns still count.
    """
    names = list(profile.columns if columns is None else columns)
    available = set(frame_columns(frame))
    results: dict[str, ColumnDrift] = {}
    numeric_names: list[str] = []
    for name in names:
        kind = profile.kind(name)
        if kind is None:
            if name in available:
                results[name] = no_data(name, column_kind(frame[name]), "column missing from the reference",
                                        n_current=present_count(frame[name]))
            else:
                raise DriftError(f"column {name!r} is in neither the reference nor the current data")
        elif name not in available:
            results[name] = no_data(name, kind, "column missing from the current data")
        elif kind is ColumnKind.UNSUPPORTED:
            results[name] = no_data(name, kind, profile.unsupported[name])
        elif column_kind(frame[name]) is not kind:
            results[name] = no_data(name, kind, f"{kind.value} in the reference but "
                                                f"{column_kind(frame[name]).value} in the current data")
        elif kind is ColumnKind.CATEGORICAL:
            results[name] = compare_categorical(name, profile.categorical[name], frame[name], min_samples)
        else:
            numeric_names.append(name)
    if numeric_names:
        current = np.empty((len(numeric_names), len(frame)), dtype=np.float64)
        for row, name in enumerate(numeric_names):
            current[row] = numeric_values(frame[name])
        for result in compare_numeric(profile, numeric_names, current, min_samples, compiled):
            results[result.column] = result
    return [results[name] for name in names]

