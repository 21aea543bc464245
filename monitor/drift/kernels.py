"""Compiled drift kernels: one pass over sorted samples, parallel over columns.

Every kernel reproduces a scipy/numpy definition (see `monitor.drift.statistics`
for the conventions) on data that is already sorted: the reference is sorted once
when its profile is fitted, so a cycle costs one sort of the current sample (done
by numpy, whose SIMD sort is several times faster than numba's) plus one merge walk.

`cache=True` writes the compiled machine code next to this module, so a daemon
restart loads it instead of compiling again. `parallel=True` spreads columns over
the cores with `prange`; a single wide column gets one core.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Proportions of 0 are replaced by this before PSI's log ratio (Evidently's and
# NannyML's convention), with no renormalisation afterwards.
PSI_EPSILON = 1e-4


@njit(cache=True)
def finite_range(sorted_values: np.ndarray) -> tuple[int, int]:
    """[lo, hi) of the finite values in an ascending numpy-sorted array.

    numpy sorts -inf first and +inf then NaN last, so the non-finite values sit at
    the two ends and are found without a pass over the data.
    """
    lo = 0
    hi = sorted_values.shape[0]
    while lo < hi and not np.isfinite(sorted_values[lo]):
        lo += 1
    while hi > lo and not np.isfinite(sorted_values[hi - 1]):
        hi -= 1
    return lo, hi


@njit(cache=True)
def ks_wasserstein_sorted(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 distance of two ascending, finite, non-empty samples.

    Walks the merged distinct values once. At each distinct value x the empirical
    CDFs F(x) = #{<= x} / n are those `ks_2samp` and `wasserstein_distance` compute
    with searchsorted(side="right"); KS is the largest |F_ref - F_cur|, Wasserstein
    the integral of |F_ref - F_cur| between consecutive distinct values.
    """
    n_ref = reference.shape[0]
    n_cur = current.shape[0]
    i = 0
    j = 0
    ks = 0.0
    wasserstein = 0.0
    # One element per step, written so the unpredictable "which side is next" is a
    # select rather than a branch. Within a run of equal values the CDFs are only
    # partly advanced: those steps add 0 to the integral (next == x) and are kept out
    # of the KS maximum (next > x), so ties behave exactly as searchsorted(side="right").
    a = reference[0]
    b = current[0]
    while True:
        take_reference = 1 if a <= b else 0
        x = a if take_reference else b
        i += take_reference
        j += 1 - take_reference
        a = reference[i] if i < n_ref else np.inf
        b = current[j] if j < n_cur else np.inf
        following = min(a, b)
        gap = abs(i / n_ref - j / n_cur)
        if following == np.inf:  # both samples consumed: gap is 0 here
            if gap > ks:
                ks = gap
            break
        candidate = gap if following > x else 0.0
        if candidate > ks:
            ks = candidate
        wasserstein += gap * (following - x)
    return ks, wasserstein


@njit(cache=True)
def bin_counts_sorted(sorted_values: np.ndarray, edges: np.ndarray, out: np.ndarray) -> None:
    """Counts per bin, bin(v) = searchsorted(edges, v, side="right"), of an ascending sample.

    On a sorted sample the counts fall out of one binary search per edge: the
    values below edge k are exactly those in bins 0..k.
    """
    n = sorted_values.shape[0]
    below_previous = 0
    for k in range(edges.shape[0]):
        below = np.searchsorted(sorted_values, edges[k], side="left")
        out[k] = below - below_previous
        below_previous = below
    out[edges.shape[0]] = n - below_previous


@njit(cache=True)
def psi_from_proportions(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI = sum (q - p) ln(q / p), zero proportions replaced by PSI_EPSILON."""
    total = 0.0
    for k in range(reference.shape[0]):
        p = reference[k] if reference[k] != 0.0 else PSI_EPSILON
        q = current[k] if current[k] != 0.0 else PSI_EPSILON
        total += (q - p) * np.log(q / p)
    return total


@njit(cache=True)
def _relative_entropy_term(x: float, y: float) -> float:
    # scipy.special.rel_entr
    if x > 0.0 and y > 0.0:
        return x * np.log(x / y)
    if x == 0.0 and y >= 0.0:
        return 0.0
    return np.inf


@njit(cache=True)
def js_from_proportions(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, computed as scipy.spatial.distance.jensenshannon does."""
    p = reference / reference.sum()
    q = current / current.sum()
    left = 0.0
    right = 0.0
    for k in range(p.shape[0]):
        m = (p[k] + q[k]) / 2.0
        left += _relative_entropy_term(p[k], m)
        right += _relative_entropy_term(q[k], m)
    divergence = (left + right) / np.log(2.0)
    # Rounding can leave a hair below zero for identical distributions; scipy would
    # return NaN there, which is "no data" for us, not "no drift".
    return np.sqrt(max(divergence, 0.0) / 2.0)


@njit(cache=True, parallel=True)
def numeric_drift_kernel(reference_sorted: np.ndarray, reference_offsets: np.ndarray,
                         reference_columns: np.ndarray, edges: np.ndarray, edge_counts: np.ndarray,
                         reference_bin_counts: np.ndarray, reference_n: np.ndarray,
                         current_sorted: np.ndarray):
    """KS, Wasserstein, PSI, JS and current bin counts for each row of `current_sorted`.

    Row c of `current_sorted` (columns x rows, each row ascending, NaN/inf at the
    ends) is compared with profile column `reference_columns[c]`, whose sorted
    sample is `reference_sorted[reference_offsets[col]:reference_offsets[col + 1]]`,
    bin edges `edges[col, :edge_counts[col]]` and bin counts `reference_bin_counts[col]`
    over `reference_n[col]` values. Statistics are NaN where either side is empty.
    """
    n_columns = current_sorted.shape[0]
    max_bins = edges.shape[1] + 1
    ks = np.full(n_columns, np.nan)
    wasserstein = np.full(n_columns, np.nan)
    psi = np.full(n_columns, np.nan)
    js = np.full(n_columns, np.nan)
    current_bin_counts = np.zeros((n_columns, max_bins), dtype=np.int64)
    current_n = np.zeros(n_columns, dtype=np.int64)
    for c in prange(n_columns):
        col = reference_columns[c]
        row = current_sorted[c]
        lo, hi = finite_range(row)
        current_n[c] = hi - lo
        reference = reference_sorted[reference_offsets[col]:reference_offsets[col + 1]]
        if hi == lo or reference.shape[0] == 0 or reference_n[col] == 0:
            continue
        current = row[lo:hi]
        ks[c], wasserstein[c] = ks_wasserstein_sorted(reference, current)
        n_bins = edge_counts[col] + 1
        bin_counts_sorted(current, edges[col, :edge_counts[col]], current_bin_counts[c])
        p = reference_bin_counts[col, :n_bins] / reference_n[col]
        q = current_bin_counts[c, :n_bins] / (hi - lo)
        psi[c] = psi_from_proportions(p, q)
        js[c] = js_from_proportions(p, q)
    return ks, wasserstein, psi, js, current_bin_counts, current_n
