"""The drift kernels without numba, for one-shot processes (`monitor drift`).

`monitor.drift.kernels` compiles a merge walk with numba: the fastest per column, but
loading numba and its cached machine code costs about a second of CPU at start-up, more
than the whole computation on a few million rows. A command that runs once uses these
instead: the same statistics, by the same definitions (see `monitor.drift.statistics`),
in vectorised numpy over the same sorted inputs. The daemon, which pays numba's start-up
once, keeps the compiled kernels. Tests hold both to scipy and to each other.
"""

from __future__ import annotations

import math

import numpy as np

# Proportions of 0 are replaced by this before PSI's log ratio (as in monitor.drift.kernels).
PSI_EPSILON = 1e-4


def finite_range(sorted_values: np.ndarray) -> tuple[int, int]:
    """[lo, hi) of the finite values of an ascending numpy-sorted array (-inf first, +inf and NaN last)."""
    lo = int(np.searchsorted(sorted_values, -np.inf, side="right"))
    hi = int(np.searchsorted(sorted_values, np.inf, side="left"))  # NaN sorts after +inf
    return lo, max(hi, lo)


def ks_wasserstein_sorted(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 distance of two ascending, finite, non-empty samples.

    The two runs are merged by a stable argsort (timsort finds the two runs and merges
    them in one pass); the empirical CDFs at the last copy of each distinct value are
    those `ks_2samp` and `wasserstein_distance` get with searchsorted(side="right").
    """
    n, m = reference.shape[0], current.shape[0]
    values = np.concatenate([reference, current])
    order = np.argsort(values, kind="stable")
    merged = values[order]
    # Counts up to n + m: int32 halves the memory traffic of the passes below when they fit.
    count_type = np.int32 if n + m < 2 ** 31 else np.int64
    counted_reference = np.cumsum(order < n, dtype=count_type)
    counted_all = np.arange(1, n + m + 1, dtype=count_type)
    ends_value = np.empty(merged.shape[0], dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=ends_value[:-1])
    ends_value[-1] = True
    if not ends_value.all():  # ties: keep the last copy of each distinct value
        counted_reference, counted_all, merged = (counted_reference[ends_value], counted_all[ends_value],
                                                  merged[ends_value])
    gap = np.abs(counted_reference / n - (counted_all - counted_reference) / m)
    return float(gap.max()), float(np.sum(gap[:-1] * np.diff(merged)))


def bin_counts_sorted(sorted_values: np.ndarray, edges: np.ndarray, out: np.ndarray) -> None:
    """Counts per bin, bin(v) = searchsorted(edges, v, side="right"), of an ascending sample."""
    below = np.searchsorted(sorted_values, edges, side="left")
    out[:edges.shape[0] + 1] = np.diff(np.concatenate([[0], below, [sorted_values.shape[0]]]))


def psi_from_proportions(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI = sum (q - p) ln(q / p), zero proportions replaced by PSI_EPSILON (summed in order, as the kernel)."""
    total = 0.0
    for p, q in zip(reference.tolist(), current.tolist()):
        p = p if p != 0.0 else PSI_EPSILON
        q = q if q != 0.0 else PSI_EPSILON
        total += (q - p) * math.log(q / p)
    return total


def _relative_entropy_term(x: float, y: float) -> float:
    # scipy.special.rel_entr
    if x > 0.0 and y > 0.0:
        return x * math.log(x / y)
    if x == 0.0 and y >= 0.0:
        return 0.0
    return math.inf


def js_from_proportions(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2, computed as scipy.spatial.distance.jensenshannon does."""
    p = (reference / reference.sum()).tolist()
    q = (current / current.sum()).tolist()
    left = right = 0.0
    for pk, qk in zip(p, q):
        middle = (pk + qk) / 2.0
        left += _relative_entropy_term(pk, middle)
        right += _relative_entropy_term(qk, middle)
    divergence = (left + right) / math.log(2.0)
    if math.isnan(divergence):
        return math.nan
    # A hair below zero for identical distributions is rounding, not "no data".
    return math.sqrt(max(divergence, 0.0) / 2.0)


def numeric_drift(reference_sorted: np.ndarray, reference_offsets: np.ndarray, reference_columns: np.ndarray,
                  edges: np.ndarray, edge_counts: np.ndarray, reference_bin_counts: np.ndarray,
                  reference_n: np.ndarray, current_sorted: np.ndarray):
    """`monitor.drift.kernels.numeric_drift_kernel`'s contract and results, one column after another."""
    n_columns = current_sorted.shape[0]
    max_bins = edges.shape[1] + 1
    ks = np.full(n_columns, np.nan)
    wasserstein = np.full(n_columns, np.nan)
    psi = np.full(n_columns, np.nan)
    js = np.full(n_columns, np.nan)
    current_bin_counts = np.zeros((n_columns, max_bins), dtype=np.int64)
    current_n = np.zeros(n_columns, dtype=np.int64)
    for c in range(n_columns):
        col = reference_columns[c]
        lo, hi = finite_range(current_sorted[c])
        current_n[c] = hi - lo
        reference = reference_sorted[reference_offsets[col]:reference_offsets[col + 1]]
        if hi == lo or reference.shape[0] == 0 or reference_n[col] == 0:
            continue
        current = current_sorted[c, lo:hi]
        ks[c], wasserstein[c] = ks_wasserstein_sorted(reference, current)
        n_bins = edge_counts[col] + 1
        bin_counts_sorted(current, edges[col, :edge_counts[col]], current_bin_counts[c])
        p = reference_bin_counts[col, :n_bins] / reference_n[col]
        q = current_bin_counts[c, :n_bins] / (hi - lo)
        psi[c] = psi_from_proportions(p, q)
        js[c] = js_from_proportions(p, q)
    return ks, wasserstein, psi, js, current_bin_counts, current_n
