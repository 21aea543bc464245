"""Idle GPU runs: long enough, below the threshold, and never across missing data."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from monitor.cost.idle import idle_runs

STEP = timedelta(minutes=5)
T = np.arange(12) * 300.0


@pytest.mark.parametrize("utilization, want", [
    pytest.param([0.5] * 12, [], id="a busy GPU has no idle period"),
    pytest.param([0.5] * 2 + [0.02] * 12 + [], [], id="shorter than an hour is not reported"),
    pytest.param([0.02] * 12, [(0, 12)], id="an hour below 10% is one period"),
    pytest.param([0.02] * 6 + [np.nan] + [0.02] * 5, [], id="missing data splits a run: no data is not idle"),
    pytest.param([0.1] * 12, [], id="exactly the threshold is not below it"),
])
def test_idle_runs(utilization, want):
    values = np.array(utilization[:12], dtype=float)
    assert idle_runs(T[:len(values)], values, 0.10, timedelta(hours=1), STEP) == want
