"""Drift results as the rules engine's signals (`monitor.signals.CATALOGUE`).

Per column (labels model, version, column): the statistics that apply to its kind
(numeric: psi, js, ks, ks_pvalue, wasserstein_norm; categorical: psi, js,
chi2_pvalue; histogram: all of them) and drift_detected. Per version (labels model,
version): drift_share. A column without data emits the same signals with value
None, so a rule sees "no data" rather than silence or 0.
"""

from __future__ import annotations

from monitor.definition_errors import DefinitionError, DefinitionKind
from monitor.drift.prediction_drift import DriftResult
from monitor.drift.profile import ColumnKind
from monitor.drift.statistics import ColumnDrift
from monitor.signals import Signal

# signal name -> ColumnDrift attribute, per column kind
_NUMERIC = {"drift_psi": "psi", "drift_js": "js", "drift_ks": "ks", "drift_ks_pvalue": "ks_pvalue",
            "drift_wasserstein_norm": "wasserstein_norm"}
_CATEGORICAL = {"drift_psi": "psi", "drift_js": "js", "drift_chi2_pvalue": "chi2_pvalue"}
SIGNALS_BY_KIND = {
    ColumnKind.NUMERIC: _NUMERIC,
    ColumnKind.CATEGORICAL: _CATEGORICAL,
    ColumnKind.HISTOGRAM: {**_NUMERIC, "drift_chi2_pvalue": "chi2_pvalue"},
    ColumnKind.UNSUPPORTED: {},
}


def _as_signal_value(value: float | bool | None) -> float | None:
    return None if value is None else float(value)


def _evidence(result: DriftResult, column: ColumnDrift) -> dict[str, float | None]:
    # The column's statistics travel with every one of its signals, so an alert on
    # drift_detected can show (and its annotations quote) the numbers that fired it.
    statistics = {name: _as_signal_value(getattr(column, attribute))
                  for name, attribute in SIGNALS_BY_KIND[column.kind].items()}
    evidence: dict[str, float | None] = {
        **statistics,
        "n_reference": float(column.n_reference), "n_current": float(column.n_current),
        "reference_start": result.windows.reference_start.timestamp(),
        "reference_end": result.windows.reference_end.timestamp(),
        "current_start": result.windows.current_start.timestamp(),
    }
    if column.approximate:
        # KS and Wasserstein on histogram buckets are approximations of the sample statistics.
        evidence["approximate"] = 1.0
    return evidence


def drift_signals(results: list[DriftResult]) -> list[Signal]:
    """Signals for every model version's columns and its drift share."""
    signals: list[Signal] = []
    for result in results:
        if result.query_error is not None:
            # The model's own query was rejected: no numbers, one `definition_error` instead.
            signals.append(DefinitionError.of(DefinitionKind.MODEL, result.model, result.query_error).signal())
            continue
        version_labels = {"model": result.model, "version": result.version}
        for column in result.columns:
            if column.kind is ColumnKind.UNSUPPORTED:
                continue
            labels = {**version_labels, "column": column.column}
            evidence = _evidence(result, column)
            for name, attribute in SIGNALS_BY_KIND[column.kind].items():
                signals.append(Signal(name, labels, _as_signal_value(getattr(column, attribute)), evidence))
            signals.append(Signal("drift_detected", labels, _as_signal_value(column.drifted), evidence))
        signals.append(Signal("drift_share", version_labels, result.drift_share,
                              {"dataset_drift": _as_signal_value(result.dataset_drift)}))
    return signals
