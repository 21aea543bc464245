"""The daemon's drift step: each model's prediction histogram and prediction log, per version.

Windows. The current window is the last `drift.current` before `at`. The reference
window is `drift.reference` long and ends at the current window's start rounded
down to a multiple of `drift.current` (since the epoch): it moves once per
current-window length, not every cycle, so a fitted profile is reused until then.

Which reference a version is compared with. A version that was already serving
at the start of the reference window (it has observations in the window's first
`drift.current`) is compared with its own traffic over the reference window: it
drifts when it changes. A version that arrived later (a canary, a fresh rollout)
is compared with the model's *baseline*: the established version with the most
observations in the reference window, i.e. the last-known-good one. Comparing a new
version with its own short history would hide exactly the drift a rollout causes,
and comparing everything with all traffic would let a drifting canary contaminate
the reference of the stable version beside it. Without any established version
(a model first deployed inside the window) the busiest version is the baseline.

Inputs. The histogram `models[].predictions` (a `..._bucket` selector) gives the
column "prediction" from two `increase()` queries; `drift.log` (Parquet or CSV,
one row per prediction, with a timestamp column and optionally a version column
named like `version_label`) gives one column per feature. Log profiles are cached
in the state store under namespace "drift_profiles", keyed by the log and window
(not the model): models reading one log over the same windows share its read, its
profiles and their comparison within a cycle. Rows of a closed reference window are
assumed not to change. Versions are "" when the data has no version.

The comparisons use numpy's kernels (`compare_to_profile(..., compiled=False)`), not
numba's: a cycle's current window is small (an hour of rows), where the two take about
the same time, and loading numba with its compiled kernels adds some 160 MiB to the
daemon's resident memory. Tests hold both kernels to scipy and to each other.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import pandas as pd

from monitor.config import Config, DriftConfig, ModelConfig
from monitor.drift.decision import DriftReport, decide
from monitor.drift.histogram import HistogramError, bucket_counts, histogram_drift
from monitor.drift.profile import ColumnKind, cached_profile, fit_profile, prune_profiles
from monitor.drift.statistics import ColumnDrift, compare_to_profile, no_data
from monitor.durations import format_duration
from monitor.incremental.answers import run_caching_closed
from monitor.sources.folding import Family
from monitor.sources.prediction_logs import (PredictionLogError, log_columns, log_state, read_window,
                                            resolve_log_path)
from monitor.sources.prometheus import InstantQuery, InstantResult, PrometheusSource, QueryError
from monitor.timeutil import from_unix, utc

PREDICTION_COLUMN = "prediction"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftWindows:
    reference_start: datetime
    reference_end: datetime
    current_start: datetime
    current_end: datetime


@dataclass(frozen=True)
class DriftResult:
    """One model version's drift: its columns ("prediction" first), share and verdict."""

    model: str
    version: str
    # Whose traffic the reference is (the version itself, or the model's baseline).
    reference_version: str | None
    windows: DriftWindows
    report: DriftReport
    # Set (with no columns, version "") when the model's own query is wrong (a 4xx:
    # `server_fault` False): only this model is in error, see compute_config_drift.
    query_error: QueryError | None = None

    @property
    def columns(self) -> tuple[ColumnDrift, ...]:
        return self.report.columns

    @property
    def drift_share(self) -> float | None:
        return self.report.drift_share

    @property
    def dataset_drift(self) -> bool | None:
        return self.report.dataset_drift

    def column(self, name: str) -> ColumnDrift:
        return next(c for c in self.columns if c.column == name)


def drift_windows(at: datetime, drift: DriftConfig) -> DriftWindows:
    """The reference and current windows for a cycle at `at` (see the module doc)."""
    at = utc(at)
    current_start = at - drift.current
    step = drift.current.total_seconds()
    reference_end = from_unix(math.floor(current_start.timestamp() / step) * step)
    return DriftWindows(reference_end - drift.reference, reference_end, current_start, at)


def choose_reference_versions(reference_totals: dict[str, float], early_totals: dict[str, float],
                              versions: list[str]) -> dict[str, str | None]:
    """Each version's reference: itself when established, else the baseline (see the module doc)."""
    established = [v for v, n in early_totals.items() if n > 0 and reference_totals.get(v, 0) > 0]
    pool = established or [v for v, n in reference_totals.items() if n > 0]
    baseline = max(pool, key=lambda v: (reference_totals[v], v)) if pool else None
    return {v: v if v in established else baseline for v in versions}


def compute_model_drift(source: PrometheusSource, model: ModelConfig, at: datetime, store=None,
                        log_base_dir: str | Path | None = None) -> list[DriftResult]:
    """Drift per version of `model` at `at`: the prediction histogram, plus the log's features.

    `store` (a StateStore) caches fitted log profiles; `log_base_dir` resolves a
    relative `drift.log.path` (the config file's directory; default the working
    directory). Raises QueryError when Prometheus fails; an unreadable log is logged
    and its configured columns become no data, without hiding the histogram's result.
    """
    plan = _ModelPlan.of(model, at)
    return _model_drift(plan, _run_histogram_queries(source, [plan], store), at, store, log_base_dir)


def compute_config_drift(source: PrometheusSource, config: Config, at: datetime, store=None) -> list[DriftResult]:
    """`compute_model_drift` for every model that has a prediction histogram or log."""
    plans = [_ModelPlan.of(model, at) for model in config.models
             if model.predictions or (model.drift and model.drift.log)]
    # Every model's histogram queries go out as one batch: models sharing the histogram's
    # metric are answered by one query per window (see monitor/sources/folding.py); a
    # failed one is raised when its model's turn comes, as one at a time would.
    answers = _run_histogram_queries(source, plans, store)
    results: list[DriftResult] = []
    shared_logs: dict[tuple, _LogDrift] = {}
    for plan in plans:
        try:
            results += _model_drift(plan, answers, at, store, log_base_dir=config.base_dir, shared_logs=shared_logs)
        except QueryError as exc:
            if exc.server_fault:
                raise
            # This model's selector is wrong: it alone is in error, the others carry on.
            results.append(DriftResult(plan.model.name, "", None, plan.windows, decide([]), query_error=exc))
    if shared_logs:
        # Arrow's allocator keeps freed pages for reuse; a cycle reads the logs once a
        # minute, so hand them back rather than hold the largest read's peak for good.
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    if store is not None:
        # Profiles no model used this cycle belong to windows that have moved on (or to
        # logs no longer configured): each log keeps only its current reference's.
        prune_profiles(store, "", {key for log in shared_logs.values() for key in log.profile_keys})
    return results


_Answers = Mapping[InstantQuery, InstantResult | QueryError]


@dataclass(frozen=True)
class _ModelPlan:
    """One model's drift windows and its histogram's three instant queries (none without a histogram)."""

    model: ModelConfig
    drift: DriftConfig
    windows: DriftWindows
    # The reference window, the current window, and the reference window's first
    # current-window length (which versions were already serving).
    reference: InstantQuery | None
    current: InstantQuery | None
    early: InstantQuery | None

    @classmethod
    def of(cls, model: ModelConfig, at: datetime) -> "_ModelPlan":
        drift = model.drift or DriftConfig()
        windows = drift_windows(at, drift)
        if not model.predictions:
            return cls(model, drift, windows, None, None, None)
        def increase(window: timedelta, at: datetime) -> InstantQuery:
            # One member of a family across models: the same histogram's models share one query.
            template = f"sum$by({model.version_label}, le) (increase($selector[{format_duration(window)}]))"
            return InstantQuery.member(Family(template, model.predictions), at)

        return cls(model, drift, windows, increase(drift.reference, windows.reference_end),
                   increase(drift.current, windows.current_end),
                   increase(drift.current, windows.reference_start + drift.current))

    def histogram_queries(self) -> list[InstantQuery]:
        return [q for q in (self.reference, self.current, self.early) if q is not None]


def _run_histogram_queries(source: PrometheusSource, plans: list[_ModelPlan], store=None) -> _Answers:
    # The reference and early windows have closed: asked once per reference window
    # and kept in the store (monitor.incremental.answers); only the current one every cycle.
    closed = [q for plan in plans for q in (plan.reference, plan.early) if q is not None]
    return run_caching_closed(source, store, [q for plan in plans for q in plan.histogram_queries()],
                              closed)  # type: ignore[return-value]


def _answer(answers: _Answers, query: InstantQuery) -> InstantResult:
    answer = answers[query]
    if isinstance(answer, QueryError):
        raise answer
    return answer


def _model_drift(plan: _ModelPlan, answers: _Answers, at: datetime, store,
                 log_base_dir: str | Path | None, shared_logs: dict[tuple, "_LogDrift"] | None = None
                 ) -> list[DriftResult]:
    model, drift, windows = plan.model, plan.drift, plan.windows
    per_version: dict[str, list[ColumnDrift]] = {}
    references: dict[str, str | None] = {}
    if model.predictions:
        for version, (column, reference_version) in _histogram_drift(plan, answers).items():
            per_version.setdefault(version, []).append(column)
            references[version] = reference_version
    if drift.log is not None:
        log_path = resolve_log_path(drift.log.path, log_base_dir)
        try:
            log_results = _shared_log_drift(model, drift, windows, log_path, store, at, shared_logs)
        except PredictionLogError as exc:
            # The histogram's verdict still stands; the log's columns become no data.
            logger.warning("model %s: prediction log drift skipped: %s", model.name, exc)
            log_results = {version: ([no_data(c, ColumnKind.NUMERIC, f"prediction log unreadable: {exc}")
                                      for c in drift.log.columns or []], None) for version in per_version}
        for version, (columns, reference_version) in log_results.items():
            per_version.setdefault(version, []).extend(columns)
            references.setdefault(version, reference_version)
    return [DriftResult(model.name, version, references.get(version), windows,
                        decide(columns, drift.thresholds, drift.columns, drift.dataset_drift_share))
            for version, columns in sorted(per_version.items())]


# -- the prediction histogram ----------------------------------------------------

def _histogram_drift(plan: _ModelPlan, answers: _Answers) -> dict[str, tuple[ColumnDrift, str | None]]:
    model, drift = plan.model, plan.drift
    assert plan.reference and plan.current and plan.early
    # In the order one-at-a-time queries would have failed.
    reference_answer = _answer(answers, plan.reference)
    current_answer = _answer(answers, plan.current)
    early = _answer(answers, plan.early)
    reference = _buckets_by_version(reference_answer, model.version_label)
    current = _buckets_by_version(current_answer, model.version_label)
    early_totals = {v: buckets.get("+Inf") or 0.0 for v, buckets in
                    _buckets_by_version(early, model.version_label).items()}
    reference_totals = {v: buckets.get("+Inf") or 0.0 for v, buckets in reference.items()}
    chosen = choose_reference_versions(reference_totals, early_totals, sorted(current))
    results: dict[str, tuple[ColumnDrift, str | None]] = {}
    for version in sorted(current):
        reference_version = chosen[version]
        if reference_version is None:
            results[version] = (no_data(PREDICTION_COLUMN, ColumnKind.HISTOGRAM,
                                        "no observations in the reference window"), None)
            continue
        try:
            column = histogram_drift(bucket_counts(reference[reference_version]), bucket_counts(current[version]),
                                     PREDICTION_COLUMN, drift.min_samples)
        except HistogramError as exc:
            column = no_data(PREDICTION_COLUMN, ColumnKind.HISTOGRAM, str(exc))
        results[version] = (column, reference_version)
    return results


def _buckets_by_version(result: InstantResult, version_label: str) -> dict[str, dict[str, float | None]]:
    buckets: dict[str, dict[str, float | None]] = {}
    for sample in result.samples:
        le = sample.labels.get("le")
        if le is not None:
            buckets.setdefault(sample.labels.get(version_label, ""), {})[le] = sample.value
    return buckets


# -- the prediction log ----------------------------------------------------------

def _file_state(path: str | Path) -> tuple:
    """Changes whenever the log's files are added, removed, rewritten or appended to."""
    return log_state(str(path))


@lru_cache(maxsize=256)
def _version_counts(path: str, file_state: tuple, timestamp_column: str, version_column: str | None,
                    start: datetime, end: datetime) -> tuple[tuple[str, int], ...]:
    """Rows per version in [start, end) of a log, remembered per (file state, window).

    The reference window moves once per `current` interval, so without this every
    cycle would re-read days of the version column to get the same counts.
    """
    frame = read_window(path, timestamp_column, start, end, [version_column] if version_column else [])
    versions = frame[version_column].astype(str) if version_column else pd.Series("", index=frame.index)
    return tuple(versions.value_counts().items())


_VersionDrift = dict[str, tuple[list[ColumnDrift], str | None]]


@dataclass(frozen=True)
class _LogDrift:
    """One log's drift per version over one pair of windows, and the profile keys it used."""

    versions: _VersionDrift
    profile_keys: frozenset[str]


def _shared_log_drift(model: ModelConfig, drift: DriftConfig, windows: DriftWindows, path: str, store,
                      at: datetime, shared: dict[tuple, _LogDrift] | None) -> _VersionDrift:
    """`_log_drift`, computed once per cycle for models reading the same log the same way.

    Everything it depends on is in the key: the log and how it is read, the version
    column's name, the windows and min_samples. Without `shared` (one model on its
    own, e.g. the weekly report's) it prunes that log's profiles of other windows itself.
    """
    log = drift.log
    assert log is not None
    key = (path, log.timestamp_column, tuple(log.columns) if log.columns is not None else None,
           model.version_label, windows, drift.min_samples)
    if shared is not None and key in shared:
        return shared[key].versions
    result = _log_drift(model, drift, windows, path, store, at)
    if shared is not None:
        shared[key] = result
    elif store is not None:
        prune_profiles(store, _profile_prefix(path), set(result.profile_keys))
    return result.versions


def _profile_prefix(path: str) -> str:
    return f"{path}|log|"


def _log_drift(model: ModelConfig, drift: DriftConfig, windows: DriftWindows, path: str, store,
               at: datetime) -> _LogDrift:
    log = drift.log
    assert log is not None
    available = log_columns(path)
    version_column = model.version_label if model.version_label in available else None
    excluded = {log.timestamp_column, version_column}
    columns = list(log.columns) if log.columns is not None else [c for c in available if c not in excluded]
    with_version = [*columns, version_column] if version_column else columns

    def versions_of(frame: pd.DataFrame) -> pd.Series:
        return frame[version_column].astype(str) if version_column else pd.Series("", index=frame.index)

    # Which versions served where: only the version column is read, and only when the
    # reference window has moved or the file has changed (see _version_counts).
    file_state = _file_state(path)
    reference_counts = _version_counts(str(path), file_state, log.timestamp_column, version_column,
                                       windows.reference_start, windows.reference_end)
    early_counts = _version_counts(str(path), file_state, log.timestamp_column, version_column,
                                   windows.reference_start, windows.reference_start + drift.current)
    current = read_window(path, log.timestamp_column, windows.current_start, windows.current_end, with_version)
    current_versions = versions_of(current)
    chosen = choose_reference_versions(dict(reference_counts), dict(early_counts), sorted(current_versions.unique()))
    window_key = f"{windows.reference_start.isoformat()}|{windows.reference_end.isoformat()}"
    used_keys: set[str] = set()
    results: dict[str, tuple[list[ColumnDrift], str | None]] = {}
    for version, reference_version in chosen.items():
        rows = current[(current_versions == version).to_numpy()]
        if reference_version is None:
            results[version] = ([no_data(c, ColumnKind.NUMERIC, "no rows in the reference window")
                                 for c in columns], None)
            continue
        # The log, how it is read and the window: models reading one log share the profile.
        key = (f"{_profile_prefix(path)}{log.timestamp_column}|{version_column or ''}|{reference_version}|"
               f"{window_key}|{','.join(columns)}")
        used_keys.add(key)

        def fit(reference_version: str = reference_version):
            frame = read_window(path, log.timestamp_column, windows.reference_start, windows.reference_end,
                                with_version)
            frame = frame[(versions_of(frame) == reference_version).to_numpy()]
            return fit_profile(frame, columns, description=f"{path} {window_key} version={reference_version}")

        profile, _ = cached_profile(store, key, fit, at.timestamp())
        results[version] = (compare_to_profile(profile, rows, columns, drift.min_samples, compiled=False),
                            reference_version)
    return _LogDrift(results, frozenset(used_keys))
