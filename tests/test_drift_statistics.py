"""Every drift statistic equals its scipy/numpy definition, on random data (hypothesis).

Definitions (see monitor.drift.statistics): ks and ks_pvalue of `ks_2samp(method="asymp")`,
`wasserstein_distance`, bins at unique deciles with searchsorted(side="right"), PSI with
zero proportions replaced by 0.0001, `jensenshannon(base=2)`, `chi2_contingency` on the
2 x k table over the union of categories. Statistics within 1e-9 relative, p-values
within 1e-6 absolute.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from monitor.drift.profile import ColumnKind, fit_profile
from monitor.drift.ks_pvalue import TAIL_Z, ks_asymptotic_pvalue, pelz_good_cdf
from monitor.drift.statistics import compare_to_profile

REPO = Path(__file__).resolve().parent.parent

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REL = 1e-9
PVALUE_ABS = 1e-6


# -- the definitions, written out independently -----------------------------------

def expected_psi(p: np.ndarray, q: np.ndarray) -> float:
    p = np.where(p == 0, 0.0001, p)
    q = np.where(q == 0, 0.0001, q)
    return float(np.sum((q - p) * np.log(q / p)))


def expected_numeric(reference: np.ndarray, current: np.ndarray) -> dict[str, float | None]:
    edges = np.unique(np.quantile(reference, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]))
    bins = len(edges) + 1
    p = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=bins) / len(reference)
    q = np.bincount(np.searchsorted(edges, current, side="right"), minlength=bins) / len(current)
    with np.errstate(invalid="ignore", divide="ignore"):  # scipy's own n = 1 corner: NaN p-value
        ks = stats.ks_2samp(reference, current, method="asymp")
        js = float(jensenshannon(p, q, base=2))
    wasserstein = stats.wasserstein_distance(reference, current)
    return {"ks": float(ks.statistic), "ks_pvalue": None if math.isnan(ks.pvalue) else float(ks.pvalue),
            "wasserstein": wasserstein, "wasserstein_norm": wasserstein / max(np.std(reference), 0.001),
            "psi": expected_psi(p, q), "js": js}


def expected_categorical(reference: list[str], current: list[str]) -> dict[str, float]:
    categories = sorted(set(reference) | set(current))
    ref = np.array([reference.count(c) for c in categories], dtype=float)
    cur = np.array([current.count(c) for c in categories], dtype=float)
    chi2 = stats.chi2_contingency(np.vstack([ref, cur]))
    p, q = ref / ref.sum(), cur / cur.sum()
    return {"chi2": float(chi2.statistic), "chi2_pvalue": float(chi2.pvalue), "psi": expected_psi(p, q),
            "js": float(jensenshannon(p, q, base=2))}


def assert_statistic(name: str, ours: float | None, expected: float | None) -> None:
    if expected is None:
        assert ours is None, f"{name}: scipy has no value, we gave {ours}"
        return
    if name == "js" and math.isnan(expected):
        # scipy takes the square root of a rounding residue just below 0 (NaN); we clamp to 0.
        assert ours is not None and ours <= 1e-7
        return
    assert ours is not None, f"{name}: we gave None, scipy {expected}"
    if name.endswith("pvalue"):
        assert abs(ours - expected) <= PVALUE_ABS, f"{name}: {ours} vs scipy {expected}"
    else:
        assert math.isclose(ours, expected, rel_tol=REL, abs_tol=1e-300), f"{name}: {ours} vs scipy {expected}"


def drift_of(reference, current, column="x", compiled=True):
    profile = fit_profile(pd.DataFrame({column: reference}))
    return compare_to_profile(profile, pd.DataFrame({column: current}), compiled=compiled)[0]


# -- random data: ties, constants, tiny samples, values outside the reference range --

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
few_values = st.integers(-3, 3).map(float)  # heavy ties


@st.composite
def numeric_pairs(draw):
    style = draw(st.sampled_from(["continuous", "ties", "constant reference", "shifted"]))
    n_ref = draw(st.integers(1, 80))
    n_cur = draw(st.integers(1, 80))
    if style == "ties":
        reference = draw(st.lists(few_values, min_size=n_ref, max_size=n_ref))
        current = draw(st.lists(few_values, min_size=n_cur, max_size=n_cur))
    elif style == "constant reference":
        value = draw(finite)
        reference = [value] * n_ref
        current = draw(st.lists(st.one_of(st.just(value), finite), min_size=n_cur, max_size=n_cur))
    else:
        reference = draw(st.lists(finite, min_size=n_ref, max_size=n_ref))
        current = draw(st.lists(finite, min_size=n_cur, max_size=n_cur))
        if style == "shifted":  # much of the current sample beyond the reference's range
            shift = draw(st.floats(-5e6, 5e6, allow_nan=False))
            current = [v + shift for v in current]
    return np.array(reference), np.array(current)


@pytest.mark.parametrize("compiled", [True, False], ids=["numba kernels", "numpy kernels"])
@SETTINGS
@given(pair=numeric_pairs())
def test_numeric_statistics_equal_scipy(pair, compiled):
    reference, current = pair
    result = drift_of(reference, current, compiled=compiled)
    assert result.kind is ColumnKind.NUMERIC
    assert (result.n_reference, result.n_current) == (len(reference), len(current))
    for name, value in expected_numeric(reference, current).items():
        assert_statistic(name, getattr(result, name), value)
    assert result.chi2 is None and result.chi2_pvalue is None


@SETTINGS
@given(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=120),
       st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=120))
def test_categorical_statistics_equal_scipy(reference, current):
    result = drift_of(reference, current)
    assert result.kind is ColumnKind.CATEGORICAL
    for name, value in expected_categorical(reference, current).items():
        assert_statistic(name, getattr(result, name), value)
    assert result.ks is None and result.wasserstein is None


@SETTINGS
@given(st.lists(st.lists(finite, min_size=1, max_size=40), min_size=2, max_size=6), st.data())
def test_many_columns_in_one_parallel_call_equal_scipy_column_by_column(references, data):
    rows = data.draw(st.integers(1, 40))
    current = {f"c{i}": data.draw(st.lists(finite, min_size=rows, max_size=rows)) for i in range(len(references))}
    reference_frame = pd.concat([pd.Series(r, name=f"c{i}") for i, r in enumerate(references)], axis=1)
    results = compare_to_profile(fit_profile(reference_frame), pd.DataFrame(current))
    for i, result in enumerate(results):
        expected = expected_numeric(np.array(references[i]), np.array(current[f"c{i}"]))
        for name, value in expected.items():
            assert_statistic(name, getattr(result, name), value)


@pytest.mark.parametrize("reference, current, dropped", [
    ([1.0, np.nan, 2.0, 3.0, np.inf], [2.0, -np.inf, 2.5, np.nan, np.nan], (2, 3)),
    ([0.5] * 5 + [np.nan], [np.inf, 0.5, 0.6], (1, 1)),
], ids=["NaN and infinities are dropped from both sides and counted",
        "a constant reference with a NaN still compares"])
def test_non_finite_values_are_dropped_and_counted(reference, current, dropped):
    result = drift_of(np.array(reference), np.array(current))
    assert (result.n_reference_dropped, result.n_current_dropped) == dropped
    ref, cur = np.array(reference), np.array(current)
    expected = expected_numeric(ref[np.isfinite(ref)], cur[np.isfinite(cur)])
    for name, value in expected.items():
        assert_statistic(name, getattr(result, name), value)


@pytest.mark.parametrize("current, reason", [
    ([np.nan, np.nan], "no values in the current sample"),
    ([], "no values in the current sample"),
], ids=["an all-NaN current column is no data, not 0", "an empty current sample is no data"])
def test_empty_current_is_no_data(current, reason):
    result = drift_of(np.array([1.0, 2.0, 3.0]), np.array(current, dtype=float))
    assert result.no_data == reason
    assert all(getattr(result, s) is None for s in ("psi", "js", "ks", "ks_pvalue", "wasserstein"))


def test_an_all_nan_reference_is_no_data():
    result = drift_of(np.array([np.nan, np.nan]), np.array([1.0, 2.0]))
    assert result.no_data == "no values in the reference" and result.psi is None


def test_categorical_missing_values_are_dropped_and_counted():
    result = drift_of(["a", None, "b", "a"], ["b", None, None, "c"])
    assert (result.n_reference_dropped, result.n_current_dropped) == (1, 2)
    expected = expected_categorical(["a", "b", "a"], ["b", "c"])
    for name, value in expected.items():
        assert_statistic(name, getattr(result, name), value)


@pytest.mark.parametrize("min_samples, n_current, expect_data", [
    (100, 99, False), (100, 100, True), (1, 1, True),
], ids=["one value short of min_samples is no data", "exactly min_samples is enough",
        "min_samples 1 accepts a single value"])
def test_min_samples_guards_both_windows(min_samples, n_current, expect_data):
    rng = np.random.default_rng(3)
    profile = fit_profile(pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)}))
    current = pd.DataFrame({"x": rng.normal(size=n_current), "c": rng.choice(["a", "b"], n_current)})
    for result in compare_to_profile(profile, current, min_samples=min_samples):
        assert result.has_data is expect_data, result
        assert (result.psi is not None) is expect_data


def test_a_subsampled_reference_keeps_exact_bins_and_approximates_ks():
    rng = np.random.default_rng(7)
    reference, current = rng.normal(size=50_000), rng.normal(0.05, 1, size=20_000)
    profile = fit_profile(pd.DataFrame({"x": reference}), max_sample=5_000)
    result = compare_to_profile(profile, pd.DataFrame({"x": current}))[0]
    expected = expected_numeric(reference, current)
    assert result.n_reference == 50_000
    assert profile.numeric.sample(0).size == 5_000
    # Bins, n and std come from every reference value: PSI, JS and the norm's std are exact.
    assert_statistic("psi", result.psi, expected["psi"])
    assert_statistic("js", result.js, expected["js"])
    # KS on a 5,000-value subsample: within a DKW-style bound of the full statistic.
    assert abs(result.ks - expected["ks"]) < 0.03
    assert abs(result.wasserstein - expected["wasserstein"]) < 0.03


def test_a_column_whose_kind_differs_between_sides_is_no_data():
    profile = fit_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    result = compare_to_profile(profile, pd.DataFrame({"x": ["a", "b", "c"]}))[0]
    assert result.no_data == "numeric in the reference but categorical in the current data"


@pytest.mark.parametrize("n_reference, n_current", [(3_000, 3_000), (10_000, 4_000), (60_000, 60_000)],
                         ids=["just above the exact range", "unequal samples", "a production-sized window"])
def test_the_fast_large_sample_ks_pvalue_equals_scipy(n_reference, n_current):
    effective_n = round(n_reference * n_current / (n_reference + n_current))
    for n_x_squared in (0.01, 0.3, 1.0, 2.0, 2.3, 4.0, 8.0, 17.0, 25.0, 400.0):
        ks = math.sqrt(n_x_squared / effective_n)
        expected = stats.kstwo.sf(ks, effective_n)
        assert abs(ks_asymptotic_pvalue(ks, n_reference, n_current) - expected) <= 1e-7, n_x_squared
    assert ks_asymptotic_pvalue(0.7, n_reference, n_current) == pytest.approx(0.0, abs=1e-300)


@pytest.mark.parametrize("effective_n", [2_001, 30_000, 1_000_000])
def test_past_the_tail_threshold_the_series_would_have_given_the_tail_too(effective_n):
    # The p-value skips Pelz-Good's series from sqrt(n) * D = TAIL_Z on; that is only the same
    # number if the series' 1 - CDF is already below the tail bound there (then the Kolmogorov
    # limit was used anyway), and scipy's exact value is in that tail as well.
    for z in (TAIL_Z, TAIL_Z + 0.5, 9.0, 20.0, 60.0):
        ks = z / math.sqrt(effective_n)
        assert 1.0 - pelz_good_cdf(effective_n, ks) < 1e-10, z
        assert stats.kstwo.sf(ks, effective_n) < 1e-10, z
        assert ks_asymptotic_pvalue(ks, 10 * effective_n, round(effective_n * 10 / 9)) < 1e-10, z


def _mixed_types_frame(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    """Every column kind Parquet holds: floats with NaN and inf, nullable ints, float32, bools, text, times."""
    floats = rng.normal(shift, 1.0, rows)
    floats[::17] = np.nan
    floats[5] = np.inf
    ints = pd.array(rng.integers(0, 50, rows) + int(shift * 10), dtype="Int64")
    ints[::13] = pd.NA
    return pd.DataFrame({"floats": floats, "ints": ints, "small": rng.normal(shift, 2.0, rows).astype(np.float32),
                         "flag": rng.random(rows) < 0.3 + shift / 10, "country": rng.choice(["US", "DE", "FR"], rows),
                         "at": pd.date_range("2026-12-01", periods=rows, freq="s", tz="UTC")})


def test_an_arrow_table_gives_the_same_drift_as_the_pandas_frame_it_converts_to():
    import pyarrow as pa

    rng = np.random.default_rng(21)
    reference, current = _mixed_types_frame(rng, 5000, 0.0), _mixed_types_frame(rng, 3000, 0.3)
    # Several chunks and a sliced (offset) chunk, as multi-row-group Parquet files and windows give.
    reference_table = pa.Table.from_batches(pa.Table.from_pandas(reference, preserve_index=False).to_batches(1234))
    current_table = pa.Table.from_pandas(current, preserve_index=False).slice(0, 3000)
    current_table = pa.concat_tables([current_table.slice(0, 1000), current_table.slice(1000)])
    from_pandas = compare_to_profile(fit_profile(reference), current)
    from_arrow = compare_to_profile(fit_profile(reference_table), current_table)
    assert [c.kind for c in from_arrow] == [ColumnKind.NUMERIC] * 3 + [ColumnKind.CATEGORICAL] * 2 + [
        ColumnKind.UNSUPPORTED]
    assert from_arrow == from_pandas
    assert from_arrow[0].n_current_dropped == (~np.isfinite(current["floats"])).sum()  # NaN and inf
    assert from_arrow[1].n_current == current["ints"].notna().sum()


@pytest.mark.parametrize("reference, current", [
    (np.random.default_rng(3).normal(0, 1, 200_000), np.random.default_rng(4).normal(0.05, 1.1, 150_000)),
    (np.random.default_rng(5).integers(0, 20, 100_000).astype(float),
     np.r_[np.random.default_rng(6).integers(3, 25, 80_000).astype(float), [np.nan, np.inf, -np.inf]]),
], ids=["continuous samples", "heavy ties with NaN and infinities"])
def test_the_numpy_kernels_equal_the_numba_kernels(reference, current):
    profile = fit_profile(pd.DataFrame({"x": reference}))
    compiled = compare_to_profile(profile, pd.DataFrame({"x": current}), compiled=True)[0]
    numpy_only = compare_to_profile(profile, pd.DataFrame({"x": current}), compiled=False)[0]
    assert (numpy_only.n_current, numpy_only.n_current_dropped) == (compiled.n_current, compiled.n_current_dropped)
    for name in ("ks", "ks_pvalue", "wasserstein", "wasserstein_norm", "psi", "js"):
        assert getattr(numpy_only, name) == pytest.approx(getattr(compiled, name), rel=1e-12, abs=1e-15), name
    expected = expected_numeric(reference[np.isfinite(reference)], current[np.isfinite(current)])
    for name, value in expected.items():
        assert_statistic(name, getattr(numpy_only, name), value)


@pytest.mark.parametrize("n", [1, 2, 7, 60, 139, 140, 141, 500, 2000],
                         ids=lambda n: f"n={n}")
def test_the_ported_small_sample_ks_distribution_equals_scipys(n):
    from monitor.drift.kolmogorov_exact import kstwo_sf

    # Every branch: both Ruben-Gambino ends, the Durbin matrix, Pomeranz, smirnov and Pelz-Good.
    xs = [*np.linspace(1e-4, 1 - 1e-4, 61), 0.4 / n, 0.75 / n, 1 / n, 1.5 / n, max(0.0, (n - 1) / n), 0.0, 1.0]
    for x in xs:
        assert kstwo_sf(n, x) == pytest.approx(stats.kstwo.sf(x, n), rel=1e-12, abs=1e-15), x
    assert math.isnan(kstwo_sf(0, 0.5))


def test_a_small_sample_drift_comparison_does_not_import_scipy_stats():
    code = ("import sys, numpy as np, pandas as pd\n"
            "from monitor.drift.profile import fit_profile\n"
            "from monitor.drift.statistics import compare_to_profile\n"
            "rng = np.random.default_rng(0)\n"
            "profile = fit_profile(pd.DataFrame({'x': rng.normal(size=500), 'c': rng.choice(['a', 'b'], 500)}))\n"
            "[r] = [r for r in compare_to_profile(profile, pd.DataFrame({'x': rng.normal(size=50),\n"
            "        'c': rng.choice(['a', 'b'], 50)}), compiled=False) if r.column == 'x']\n"
            "assert r.ks_pvalue is not None\n"
            "print(sorted(m for m in sys.modules if m.startswith(('scipy.stats', 'numba'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]"
