"""Drift on Prometheus histogram buckets: exact where buckets allow it, flagged where not.

PSI, JS and chi-square are exact on bucket counts. KS at the bucket edges equals
`ks_2samp` on samples placed at their bucket's upper edge; Wasserstein at the
midpoints equals `wasserstein_distance` with bucket counts as weights.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitor.drift.histogram import BucketCounts, HistogramError, bucket_counts, bucket_midpoints, histogram_drift

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EDGES = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])


def cumulative_by_le(counts, edges=EDGES) -> dict[str, float]:
    labels = [f"{e:g}" for e in edges] + ["+Inf"]
    return dict(zip(labels, np.cumsum(counts).astype(float)))


@pytest.mark.parametrize("cumulative, expected_counts", [
    ({"0.1": 3, "0.5": 7, "+Inf": 10}, [3, 4, 3]),
    ({"+Inf": 10, "0.5": 7, "0.1": 3}, [3, 4, 3]),
    ({"0.1": 3, "0.5": 2.9, "+Inf": 10}, [3, 0, 7]),
    ({"0.1": 3, "0.5": None, "+Inf": 10}, [3, 7]),
    ({"1e+06": 4, "+Inf": 4}, [4, 0]),
], ids=["cumulative counts become per-bucket counts", "label order does not matter",
        "a bucket below its predecessor (increase() extrapolation) is made monotonic",
        "a bucket with no value merges into the next", "exponent-formatted le parses"])
def test_bucket_counts_from_cumulative_increases(cumulative, expected_counts):
    assert bucket_counts(cumulative).counts.tolist() == expected_counts


@pytest.mark.parametrize("cumulative, message", [
    ({"0.1": 3, "0.5": 7}, 'no le="+Inf" bucket'),
    ({"0.1": 3, "+Inf": None}, "the +Inf bucket has no value"),
    ({"abc": 3, "+Inf": 4}, "le='abc' is not a number"),
], ids=["a histogram without +Inf is refused", "a +Inf bucket without a value is refused",
        "a non-numeric le is named"])
def test_unusable_buckets_are_clear_errors(cumulative, message):
    with pytest.raises(HistogramError, match=message.replace("+", r"\+").replace("(", r"\(")):
        bucket_counts(cumulative)


counts = st.lists(st.integers(0, 500), min_size=len(EDGES) + 1, max_size=len(EDGES) + 1).filter(lambda c: sum(c) > 0)


@SETTINGS
@given(counts, counts)
def test_bucket_statistics_equal_their_definitions(reference, current):
    reference, current = np.array(reference, float), np.array(current, float)
    result = histogram_drift(bucket_counts(cumulative_by_le(reference)), bucket_counts(cumulative_by_le(current)))
    p, q = reference / reference.sum(), current / current.sum()
    pp, qq = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    assert math.isclose(result.psi, float(np.sum((qq - pp) * np.log(qq / pp))), rel_tol=1e-9, abs_tol=1e-300)
    with np.errstate(invalid="ignore"):
        js = float(jensenshannon(p, q, base=2))
    if not math.isnan(js):
        assert math.isclose(result.js, js, rel_tol=1e-9, abs_tol=1e-300)
    present = (reference + current) > 0
    chi2 = stats.chi2_contingency(np.vstack([reference[present], current[present]]))
    assert math.isclose(result.chi2, chi2.statistic, rel_tol=1e-9, abs_tol=1e-300)
    assert abs(result.chi2_pvalue - chi2.pvalue) <= 1e-6
    # KS at the edges: the sample KS of values placed at their bucket's upper edge (+Inf at 2.0).
    placed = np.append(EDGES, 2.0)
    ks = stats.ks_2samp(np.repeat(placed, reference.astype(int)), np.repeat(placed, current.astype(int)),
                        method="asymp")
    assert math.isclose(result.ks, ks.statistic, rel_tol=1e-9, abs_tol=1e-15)
    # Wasserstein at the midpoints: scipy's weighted distance.
    midpoints = bucket_midpoints(EDGES)
    wasserstein = stats.wasserstein_distance(midpoints, midpoints, reference, current)
    assert math.isclose(result.wasserstein, wasserstein, rel_tol=1e-9, abs_tol=1e-15)
    assert set(result.approximate) == {"ks", "ks_pvalue", "wasserstein", "wasserstein_norm"}


def test_midpoints_follow_prometheus_conventions():
    # First bucket from 0 (its upper bound is positive), +Inf bucket at the highest finite edge.
    assert bucket_midpoints(np.array([0.1, 0.5, 1.0])).tolist() == [0.05, 0.3, 0.75, 1.0]


def test_changed_bucket_layouts_are_compared_on_common_edges():
    reference = bucket_counts({"0.1": 10, "0.2": 20, "0.5": 30, "+Inf": 40})
    current = bucket_counts({"0.1": 5, "0.5": 15, "+Inf": 20})
    result = histogram_drift(reference, current)
    # Common edges 0.1 and 0.5: reference 10/20/10, current 5/10/5 -> identical proportions.
    assert result.psi == pytest.approx(0.0, abs=1e-15)
    assert (result.n_reference, result.n_current) == (40, 20)


@pytest.mark.parametrize("current, min_samples, reason", [
    ([0] * 10, 1, "no values in the current sample"),
    ([1] * 10, 100, "10 current values, fewer than min_samples=100"),
], ids=["a window without observations is no data, never 0", "a thin window is no data"])
def test_thin_windows_are_no_data(current, min_samples, reason):
    result = histogram_drift(bucket_counts(cumulative_by_le([100] * 10)), bucket_counts(cumulative_by_le(current)),
                             min_samples=min_samples)
    assert result.no_data == reason
    assert result.psi is None and result.ks is None and result.drifted is None


def test_drifted_scores_stand_out_from_stable_ones():
    rng = np.random.default_rng(1)
    def window(a, b, n):
        return BucketCounts(EDGES, np.bincount(np.searchsorted(EDGES, rng.beta(a, b, n), side="left"),
                                               minlength=10).astype(float))
    reference = window(2, 5, 200_000)
    stable = histogram_drift(reference, window(2, 5, 20_000))
    drifted = histogram_drift(reference, window(4, 3, 20_000))
    assert stable.psi < 0.01 and stable.wasserstein_norm < 0.05
    assert drifted.psi > 1.0 and drifted.wasserstein_norm > 1.0
