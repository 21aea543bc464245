"""Prediction drift from the real Prometheus holding the simulated fleet's history.

The fleet's `ranker` v2 (a 30% canary deployed 30h before the end) scores from a
drifted Beta(4,3) instead of Beta(2,5); every other model version is stable. The
expected numbers are recomputed here from the fleet's raw in-memory bucket counters.
"""

from __future__ import annotations

from dataclasses import replace

from datetime import timedelta

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from monitor.config import load_config
from monitor.drift.prediction_drift import compute_config_drift, compute_model_drift, drift_windows
from monitor.drift.signals import drift_signals
from monitor.signals import CATALOGUE
from monitor.store import StateStore

pytestmark = pytest.mark.prometheus


@pytest.fixture
def config(fleet_config_path):
    return load_config(fleet_config_path)


def raw_bucket_increase(fleet, model, version, start, end) -> np.ndarray:
    """Per-bucket observations between two instants, from the simulator's cumulative counters."""
    series = sorted(fleet.find("model_prediction_score_bucket", model=model, version=version),
                    key=lambda s: float(s.labels["le"]))
    def at(s, t):
        value = fleet.value_at(s, t)
        return 0.0 if np.isnan(value) else value
    cumulative = np.array([at(s, end) - at(s, start) for s in series])
    return np.diff(cumulative, prepend=0.0)


def psi(p, q):
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    return float(np.sum((q - p) * np.log(q / p)))


STABLE_VERSIONS = [("ranker", "v1"), ("recommender", "v1"), ("fraud-detector", "v1"), ("search-embedder", "v1"),
                   ("churn-scorer", "v1")]


def test_the_drifting_canary_is_flagged_and_the_stable_versions_are_not(prom, config, fleet_end):
    results = {(r.model, r.version): r for r in compute_config_drift(prom, config, fleet_end)}
    canary = results[("ranker", "v2")]
    assert canary.reference_version == "v1"
    assert canary.column("prediction").drifted is True
    for key in STABLE_VERSIONS:
        assert results[key].reference_version == key[1]
        assert results[key].column("prediction").drifted is False, key
    # legacy-tagger has served nothing for 5 hours: no data, not "no drift".
    idle = results[("legacy-tagger", "v1")].column("prediction")
    assert idle.drifted is None and idle.psi is None and idle.n_current == 0


@pytest.mark.parametrize("model, version, reference_version", [
    ("ranker", "v2", "v1"), ("ranker", "v1", "v1"), ("recommender", "v1", "v1"), ("churn-scorer", "v1", "v1"),
], ids=["the canary against the baseline version", "the baseline against itself",
        "a stable model against itself", "a small stable model against itself"])
def test_bucket_statistics_match_the_raw_counters(prom, config, fleet, fleet_end, model, version, reference_version):
    model_config = config.model(model)
    windows = drift_windows(fleet_end, model_config.drift)
    result = next(r for r in compute_model_drift(prom, model_config, fleet_end, log_base_dir=config.base_dir)
                  if r.version == version)
    column = result.column("prediction")
    reference = raw_bucket_increase(fleet, model, reference_version, windows.reference_start, windows.reference_end)
    current = raw_bucket_increase(fleet, model, version, windows.current_start, windows.current_end)
    p, q = reference / reference.sum(), current / current.sum()
    # increase() extrapolates to the window's edges, scaling every bucket alike: the
    # proportions, and so PSI and JS, agree closely; the counts within a minute's worth.
    assert column.n_reference == pytest.approx(reference.sum(), rel=0.01)
    assert column.n_current == pytest.approx(current.sum(), rel=0.02)
    assert column.psi == pytest.approx(psi(p, q), rel=0.05, abs=2e-4)
    assert column.js == pytest.approx(jensenshannon(p, q, base=2), rel=0.05, abs=1e-3)
    cdf_gap = np.abs(np.cumsum(p) - np.cumsum(q))[:-1]
    assert column.ks == pytest.approx(cdf_gap.max(), rel=0.05, abs=1e-3)
    assert set(column.approximate) == {"ks", "ks_pvalue", "wasserstein", "wasserstein_norm"}


def test_drift_signals_carry_the_catalogue_names_and_labels(prom, config, fleet_end):
    signals = drift_signals(compute_config_drift(prom, config, fleet_end))
    for signal in signals:
        assert signal.name in CATALOGUE
        assert tuple(signal.labels) == CATALOGUE[signal.name][0]
    detected = {(s.labels["model"], s.labels["version"], s.labels["column"]): s.value
                for s in signals if s.name == "drift_detected"}
    assert detected[("ranker", "v2", "prediction")] == 1.0
    assert detected[("ranker", "v1", "prediction")] == 0.0
    assert detected[("legacy-tagger", "v1", "prediction")] is None
    names = {s.name for s in signals if s.labels.get("column") == "prediction" and s.labels["model"] == "ranker"}
    assert names == {"drift_psi", "drift_js", "drift_ks", "drift_ks_pvalue", "drift_wasserstein_norm",
                     "drift_chi2_pvalue", "drift_detected"}
    shares = {(s.labels["model"], s.labels["version"]): s.value for s in signals if s.name == "drift_share"}
    assert shares[("recommender", "v1")] == 0.0
    assert shares[("legacy-tagger", "v1")] is None


def test_feature_drift_from_the_prediction_log_is_per_version(prom, config, fleet, fleet_end, tmp_path):
    ranker = config.model("ranker")
    with StateStore(tmp_path / "state.db") as store:
        results = {r.version: r for r in compute_model_drift(prom, ranker, fleet_end, store,
                                                             log_base_dir=config.base_dir)}
    v1 = results["v1"]
    assert [c.column for c in v1.columns] == ["prediction", "user_age", "session_length_s", "items_viewed",
                                              "country", "device", "score"]
    # items_viewed rises for all traffic from v2's deploy on: Poisson(5) -> Poisson(8).
    assert v1.column("items_viewed").drifted is True
    assert v1.column("device").drifted is False
    assert v1.column("country").kind.value == "categorical"
    assert v1.column("score").drifted is False  # v1's own scores are stable
    # v2 (~30% of 20 rows a minute, ~360 in the hour) is compared with v1's reference:
    # its scores drifted (Beta(4,3) vs Beta(2,5)) and it sees the same upstream change.
    v2 = results["v2"]
    assert v2.reference_version == "v1"
    assert v2.column("score").drifted is True and v2.column("items_viewed").drifted is True
    assert v2.column("device").drifted is False and v2.column("user_age").drifted is False


def test_a_version_with_too_few_logged_rows_is_no_data(prom, config, fleet_end, tmp_path):
    ranker = config.model("ranker")
    strict = replace(ranker, drift=replace(ranker.drift, min_samples=1000))
    with StateStore(tmp_path / "state.db") as store:
        results = {r.version: r for r in compute_model_drift(prom, strict, fleet_end, store,
                                                             log_base_dir=config.base_dir)}
    # ~360 rows of v2 in the hour: under min_samples=1000, so no data, never "no drift".
    column = results["v2"].column("items_viewed")
    assert column.drifted is None and "min_samples" in column.no_data


def test_the_log_profile_is_fitted_once_per_reference_window(prom, config, fleet_end, tmp_path):
    ranker = config.model("ranker")

    def cached() -> dict[str, float]:
        rows = store.query("SELECT key, updated_at FROM blobs WHERE namespace = 'drift_profiles'")
        return {row["key"]: row["updated_at"] for row in rows}

    with StateStore(tmp_path / "state.db") as store:
        first = compute_model_drift(prom, ranker, fleet_end - timedelta(minutes=30), store,
                                    log_base_dir=config.base_dir)
        fitted = cached()
        assert len(fitted) == 1  # v1 is the reference of both versions
        again = compute_model_drift(prom, ranker, fleet_end - timedelta(minutes=5), store,
                                    log_base_dir=config.base_dir)
        assert cached() == fitted, "same reference window: the cached profile is reused, not refitted"
        assert again[0].windows.reference_end == first[0].windows.reference_end
        compute_model_drift(prom, ranker, fleet_end + timedelta(minutes=45), store, log_base_dir=config.base_dir)
        moved = cached()
        assert len(moved) == 1 and set(moved) != set(fitted), "a moved window refits and drops the old profile"


def test_monitor_check_validates_the_prediction_log(fleet_config_path):
    import yaml

    from monitor.validation import validate

    assert validate(str(fleet_config_path)).counts["prediction logs"] == 1
    config = yaml.safe_load(fleet_config_path.read_text())
    ranker = next(m for m in config["models"] if m["name"] == "ranker")
    ranker["drift"]["log"] = {"path": str(fleet_config_path.parent / "predictions" / "ranker.parquet"),
                              "timestamp_column": "ts"}
    broken = fleet_config_path.parent / "monitor-broken-log.yaml"  # beside it: relative globs still resolve
    broken.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        problems = [str(p) for p in validate(str(broken)).problems]
    finally:
        broken.unlink()
    assert any("models[ranker].drift.log: " in p and "has no column 'ts'" in p and str(broken) + ":" in p
               for p in problems), problems


def test_models_reading_one_log_share_its_profile_and_get_the_numbers_each_would_alone(prom, config, fleet_end,
                                                                                        tmp_path):
    ranker = config.model("ranker")
    twin = replace(ranker, name="ranker-twin")
    shared = replace(config, models=[ranker, twin])
    alone = {r.version: r for r in compute_model_drift(prom, ranker, fleet_end, log_base_dir=config.base_dir)}
    with StateStore(tmp_path / "state.db") as store:
        results = compute_config_drift(prom, shared, fleet_end, store)
        profiles = store.query("SELECT key FROM blobs WHERE namespace = 'drift_profiles'")
    assert len(profiles) == 1, "one log, one reference window, one reference version (v1): one profile"
    for model in ("ranker", "ranker-twin"):
        mine = {r.version: r for r in results if r.model == model}
        assert set(mine) == set(alone) == {"v1", "v2"}
        for version, result in mine.items():
            assert result.reference_version == alone[version].reference_version
            assert result.columns == alone[version].columns, (model, version)


def test_a_moved_reference_window_drops_the_profiles_no_model_uses(prom, config, fleet_end, tmp_path):
    with StateStore(tmp_path / "state.db") as store:
        compute_config_drift(prom, config, fleet_end - timedelta(minutes=30), store)
        before = {r["key"] for r in store.query("SELECT key FROM blobs WHERE namespace = 'drift_profiles'")}
        compute_config_drift(prom, config, fleet_end + timedelta(minutes=45), store)
        after = {r["key"] for r in store.query("SELECT key FROM blobs WHERE namespace = 'drift_profiles'")}
    assert len(before) == len(after) == 1 and before != after
