"""Reference profiles: fitted once, serialised without pickle, cached in the state store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitor.drift.profile import (PROFILE_NAMESPACE, ColumnKind, DriftError, cached_profile, fit_profile,
                                   profile_from_bytes, profile_to_bytes, prune_profiles)
from monitor.drift.statistics import compare_to_profile
from monitor.store import StateStore


@pytest.fixture
def frames():
    rng = np.random.default_rng(11)
    reference = pd.DataFrame({"age": rng.normal(40, 10, 2000), "clicks": rng.poisson(3, 2000),
                              "country": rng.choice(["US", "DE", "FR"], 2000), "flag": rng.random(2000) < 0.3,
                              "at": pd.date_range("2026-01-01", periods=2000, freq="min")})
    current = pd.DataFrame({"age": rng.normal(45, 10, 500), "clicks": rng.poisson(3, 500),
                            "country": rng.choice(["US", "DE", "GB"], 500), "flag": rng.random(500) < 0.6,
                            "at": pd.date_range("2026-02-01", periods=500, freq="min")})
    return reference, current


def test_column_kinds(frames):
    profile = fit_profile(frames[0])
    kinds = {c: profile.kind(c) for c in profile.columns}
    assert kinds == {"age": ColumnKind.NUMERIC, "clicks": ColumnKind.NUMERIC, "country": ColumnKind.CATEGORICAL,
                     "flag": ColumnKind.CATEGORICAL, "at": ColumnKind.UNSUPPORTED}


def test_a_profile_round_trips_through_bytes_with_identical_results(frames):
    reference, current = frames
    profile = fit_profile(reference)
    restored = profile_from_bytes(profile_to_bytes(profile))
    assert compare_to_profile(restored, current) == compare_to_profile(profile, current)
    assert restored.unsupported == {"at": "datetime and duration columns are not compared"}


def test_an_unreadable_cached_profile_is_refitted_not_trusted(frames, tmp_path):
    fits = []

    def fit():
        fits.append(1)
        return fit_profile(frames[0])

    with StateStore(tmp_path / "state.db") as store:
        store.put_blob(PROFILE_NAMESPACE, "m|log|k", b"not an npz", 0.0)
        profile, fitted = cached_profile(store, "m|log|k", fit, 1.0)
        assert fitted and len(fits) == 1
        again, fitted_again = cached_profile(store, "m|log|k", fit, 2.0)
        assert not fitted_again and len(fits) == 1
        assert compare_to_profile(again, frames[1]) == compare_to_profile(profile, frames[1])


def test_garbage_bytes_are_a_drift_error():
    with pytest.raises(DriftError, match="unreadable"):
        profile_from_bytes(b"garbage")


def test_pruning_keeps_other_models_profiles(frames, tmp_path):
    data = profile_to_bytes(fit_profile(frames[0][["age"]]))
    with StateStore(tmp_path / "state.db") as store:
        for key in ("ranker|log|old", "ranker|log|new", "recommender|log|old"):
            store.put_blob(PROFILE_NAMESPACE, key, data, 0.0)
        assert prune_profiles(store, "ranker|log|", {"ranker|log|new"}) == 1
        keys = {r["key"] for r in store.query("SELECT key FROM blobs")}
        assert keys == {"ranker|log|new", "recommender|log|old"}


def test_fitting_a_missing_column_names_it(frames):
    with pytest.raises(DriftError, match="'nope'"):
        fit_profile(frames[0], ["age", "nope"])
