"""Drift verdicts: Evidently's default thresholds, per-column overrides, and the drift share."""

from __future__ import annotations

import pytest

from monitor.config import DriftThresholds
from monitor.drift.decision import decide
from monitor.drift.profile import ColumnKind
from monitor.drift.statistics import ColumnDrift, no_data


def numeric(column="x", psi=0.0, wasserstein_norm=0.0) -> ColumnDrift:
    return ColumnDrift(column, ColumnKind.NUMERIC, 1000, 1000, psi=psi, js=0.0, ks=0.0, ks_pvalue=1.0,
                       wasserstein=0.0, wasserstein_norm=wasserstein_norm)


def categorical(column="c", js=0.0) -> ColumnDrift:
    return ColumnDrift(column, ColumnKind.CATEGORICAL, 1000, 1000, psi=0.0, js=js, chi2=0.0, chi2_pvalue=1.0)


@pytest.mark.parametrize("column, drifted", [
    (numeric(psi=0.2), True),
    (numeric(psi=0.1999), False),
    (numeric(wasserstein_norm=0.1), True),
    (numeric(wasserstein_norm=0.0999), False),
    (categorical(js=0.1), True),
    (categorical(js=0.0999), False),
    (ColumnDrift("h", ColumnKind.HISTOGRAM, 10, 10, psi=0.25, wasserstein_norm=0.0), True),
    (no_data("x", ColumnKind.NUMERIC, "no values in the current sample"), None),
], ids=["numeric psi at 0.2 drifts", "numeric psi just under 0.2 does not",
        "numeric normed Wasserstein at 0.1 drifts", "just under 0.1 does not",
        "categorical js at 0.1 drifts", "categorical js just under 0.1 does not",
        "a histogram is judged like a numeric column", "no data is undecided, not 'no drift'"])
def test_default_thresholds(column, drifted):
    assert decide([column]).columns[0].drifted is drifted


def test_thresholds_are_configurable_per_column():
    columns = [numeric("loose", psi=0.3), numeric("strict", psi=0.05)]
    report = decide(columns, DriftThresholds(psi=0.2), {"loose": DriftThresholds(psi=0.5),
                                                      "strict": DriftThresholds(psi=0.01)})
    assert [c.drifted for c in report.columns] == [False, True]


@pytest.mark.parametrize("columns, share, dataset_drift", [
    ([numeric(psi=1.0), numeric(), categorical(js=0.5), categorical()], 0.5, True),
    ([numeric(psi=1.0), numeric(), numeric()], 1 / 3, False),
    ([numeric(psi=1.0), no_data("y", ColumnKind.NUMERIC, "no values in the current sample")], 1.0, True),
    ([no_data("y", ColumnKind.NUMERIC, "no values in the current sample")], None, None),
], ids=["half the columns drifted is dataset drift", "a third is not",
        "columns without data are left out of the share", "no column with data: no verdict"])
def test_drift_share_and_dataset_drift(columns, share, dataset_drift):
    report = decide(columns)
    assert report.drift_share == (pytest.approx(share) if share is not None else None)
    assert report.dataset_drift is dataset_drift
