"""Drift engine time as ratios against scipy/numpy computing the same statistics.

Baseline ("scipy"): per column, `ks_2samp(method="asymp")` + `wasserstein_distance` +
numpy quantile/searchsorted/bincount PSI + scipy `jensenshannon`, which is what a
script without a fitted reference does every run. Measured ("monitor"):
`compare_to_profile` against a reference profile fitted once (the fit is timed and
printed separately, outside the ratio): copying the current column(s), numpy's sort,
one parallel numba kernel call, the KS p-values.

The numba kernels are compiled (or loaded from their on-disk cache) by a warm-up call
on a few values before anything is timed. Each monitor figure is the best of 3 runs;
the scipy baselines take several seconds and are the best of 2 for (a), one run for (b).

(a) one numeric column, 1,000,000 reference x 1,000,000 current; target >= 10x.
(b) 50 numeric columns x 200,000 rows each side, scipy column by column.
(c) the monitor time of (a) against one `numpy.sort` of the current sample, the floor.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.drift.profile import DECILES, fit_profile  # noqa: E402
from monitor.drift.statistics import compare_to_profile  # noqa: E402


def scipy_column(reference: np.ndarray, current: np.ndarray) -> tuple[float, ...]:
    ks = stats.ks_2samp(reference, current, method="asymp")
    wasserstein = stats.wasserstein_distance(reference, current)
    edges = np.unique(np.quantile(reference, DECILES))
    bins = edges.size + 1
    p = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=bins) / reference.size
    q = np.bincount(np.searchsorted(edges, current, side="right"), minlength=bins) / current.size
    pp, qq = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    psi = float(np.sum((qq - pp) * np.log(qq / pp)))
    return ks.statistic, ks.pvalue, wasserstein, psi, float(jensenshannon(p, q, base=2))


def best_of(repeats: int, run) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def check_agreement(ours, theirs) -> None:
    """The benchmark is only fair if both sides computed the same numbers."""
    for column, expected in zip(ours, theirs):
        got = (column.ks, column.ks_pvalue, column.wasserstein, column.psi, column.js)
        if not np.allclose(got, expected, rtol=1e-9, atol=1e-6):
            raise SystemExit(f"monitor and scipy disagree on {column.column}: {got} vs {expected}")


def main() -> None:
    rng = np.random.default_rng(42)
    print(f"cores: {os.cpu_count()}; numba kernels warmed up (compiled or loaded from cache) before timing")
    warm = fit_profile(pd.DataFrame({"w": rng.normal(size=100)}))
    compare_to_profile(warm, pd.DataFrame({"w": rng.normal(size=100)}))

    # (a) one column, 1M x 1M
    reference = rng.normal(0.0, 1.0, 1_000_000)
    current = rng.normal(0.02, 1.05, 1_000_000)
    current_frame = pd.DataFrame({"x": current})
    start = time.perf_counter()
    profile = fit_profile(pd.DataFrame({"x": reference}))
    fit_s = time.perf_counter() - start
    ours_s, ours = best_of(3, lambda: compare_to_profile(profile, current_frame))
    scipy_s, theirs = best_of(2, lambda: [scipy_column(reference, current)])
    check_agreement(ours, theirs)
    sort_s, _ = best_of(3, lambda: np.sort(current))
    print("(a) 1 column, 1,000,000 reference x 1,000,000 current (ks, ks_pvalue, wasserstein, psi, js):")
    print(f"    scipy {scipy_s:.3f} s, monitor {ours_s:.3f} s -> {scipy_s / ours_s:.1f}x faster "
          f"(target >= 10x); one-time reference fit {fit_s:.3f} s")

    # (b) 50 columns x 200k rows
    columns = [f"f{i}" for i in range(50)]
    rows = 200_000
    reference_frame = pd.DataFrame({c: rng.normal(i % 7, 1 + i % 3, rows) for i, c in enumerate(columns)})
    wide_current = pd.DataFrame({c: rng.normal(i % 7 + (0.3 if i % 5 == 0 else 0.0), 1 + i % 3, rows)
                                 for i, c in enumerate(columns)})
    start = time.perf_counter()
    wide_profile = fit_profile(reference_frame)
    wide_fit_s = time.perf_counter() - start
    wide_ours_s, wide_ours = best_of(3, lambda: compare_to_profile(wide_profile, wide_current))
    wide_scipy_s, wide_theirs = best_of(1, lambda: [
        scipy_column(reference_frame[c].to_numpy(), wide_current[c].to_numpy()) for c in columns])
    check_agreement(wide_ours, wide_theirs)
    print("(b) 50 columns x 200,000 rows each side, scipy column by column:")
    print(f"    scipy {wide_scipy_s:.3f} s, monitor {wide_ours_s:.3f} s -> {wide_scipy_s / wide_ours_s:.1f}x faster; "
          f"one-time reference fit {wide_fit_s:.3f} s")

    # (c) against the floor
    print(f"(c) monitor (a) {ours_s * 1000:.1f} ms vs one numpy.sort of the 1,000,000 current values "
          f"{sort_s * 1000:.1f} ms -> {ours_s / sort_s:.2f}x the sort (1.0x is the floor)")


if __name__ == "__main__":
    main()
