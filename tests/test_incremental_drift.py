"""The prediction histogram's reference window is asked once per window, and drift is unchanged.

The reference and early windows of prediction drift end in the past and move once
an hour (`drift_windows`); with a state store their answers are kept
(monitor.incremental.answers) and only the current window is asked each cycle.
The drift statistics must equal the ones computed without a store, at every cycle,
across a restart (a new store object on the same file) and when the window moves.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.config import load_config
from monitor.drift.prediction_drift import compute_config_drift, drift_windows
from monitor.incremental.answers import NAMESPACE
from monitor.store import StateStore

pytestmark = pytest.mark.prometheus


def _figures(results) -> dict:
    return {(r.model, r.version, c.column): (r.reference_version, c.n_reference, c.n_current, c.psi, c.js, c.ks,
                                             c.drifted)
            for r in results for c in r.columns}


def test_cycles_within_a_reference_window_ask_only_the_current_window(prom, fleet_config_path, fleet_end, tmp_path):
    config = load_config(fleet_config_path)
    first = fleet_end - timedelta(hours=3, minutes=50)
    path = tmp_path / "state.db"
    with StateStore(path) as store:
        made = prom.stats.queries
        compute_config_drift(prom, config, first, store)
        cold_queries = prom.stats.queries - made
        assert len(store.query("SELECT key FROM blobs WHERE namespace = ?", (NAMESPACE,))) > 0
    for minutes in (1, 20):  # each a restart: a new store object on the same file
        at = first + timedelta(minutes=minutes)
        windows, first_windows = drift_windows(at, config.models[0].drift), drift_windows(first, config.models[0].drift)
        assert (windows.reference_start, windows.reference_end) == (first_windows.reference_start,
                                                                    first_windows.reference_end)
        with StateStore(path) as store:
            made = prom.stats.queries
            warm = compute_config_drift(prom, config, at, store)
            warm_queries = prom.stats.queries - made
        assert _figures(warm) == _figures(compute_config_drift(prom, config, at))
        assert warm_queries < cold_queries


def test_when_the_reference_window_moves_it_is_asked_again(prom, fleet_config_path, fleet_end, tmp_path):
    config = load_config(fleet_config_path)
    first = fleet_end - timedelta(hours=3, minutes=50)
    with StateStore(tmp_path / "state.db") as store:
        compute_config_drift(prom, config, first, store)
        keys_before = {r[0] for r in store.query("SELECT key FROM blobs WHERE namespace = ?", (NAMESPACE,))}
        later = first + timedelta(hours=1)
        assert drift_windows(later, config.models[0].drift) != drift_windows(first, config.models[0].drift)
        moved = compute_config_drift(prom, config, later, store)
        keys_after = {r[0] for r in store.query("SELECT key FROM blobs WHERE namespace = ?", (NAMESPACE,))}
    assert _figures(moved) == _figures(compute_config_drift(prom, config, later))
    # Only the current window's answers are kept: the old reference window's are gone.
    assert keys_after and not keys_after & keys_before
