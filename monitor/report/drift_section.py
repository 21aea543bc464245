"""The report's drift section: coverage, monitor.drift's statistics per model, version
and column at the period's end, and the prediction distribution behind each verdict.

Statistics and verdicts are monitor.drift's (`compute_model_drift`). The chart
re-reads the same histogram windows the verdict used (`DriftResult.windows` and
its reference version) and turns them into bucket shares with
`monitor.drift.histogram.bucket_counts`, so the picture matches the numbers.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from monitor.config import Config, DriftConfig, ModelConfig
from monitor.drift.histogram import HistogramError, bucket_counts
from monitor.drift.prediction_drift import PREDICTION_COLUMN, DriftResult, compute_model_drift
from monitor.durations import format_duration
from monitor.report.model import DriftRow, DriftSection, PredictionDistribution, SectionStatus
from monitor.report.period import ReportPeriod
from monitor.sources.prometheus import InstantResult, PrometheusSource, QueryError
from monitor.store import StateStore

logger = logging.getLogger(__name__)


def is_drift_monitored(model: ModelConfig) -> bool:
    """A model has drift monitoring when it has a prediction histogram or a prediction log."""
    return bool(model.predictions or (model.drift and model.drift.log))


def build_drift_section(source: PrometheusSource, config: Config, period: ReportPeriod,
                        store: StateStore | None = None) -> DriftSection:
    """Drift per model and version at the end of `period`, with prediction distributions."""
    monitored = [m for m in config.models if is_drift_monitored(m)]
    rows: list[DriftRow] = []
    distributions: list[PredictionDistribution] = []
    problems: list[str] = []
    for model in monitored:
        try:
            results = compute_model_drift(source, model, period.end, store, log_base_dir=config.base_dir)
        except QueryError as exc:
            problems.append(f"{model.name}: {exc}")
            continue
        for result in results:
            rows += [DriftRow(model.name, result.version, c.column, c.psi, c.js, c.ks, c.wasserstein_norm,
                              c.drifted) for c in result.columns]
        if model.predictions:
            try:
                distributions += _prediction_distributions(source, model, results)
            except QueryError as exc:
                problems.append(f"{model.name}: prediction distribution: {exc}")
    return DriftSection(len(config.models), len(monitored), tuple(rows), tuple(distributions),
                        SectionStatus(True, "; ".join(problems)))


def _prediction_distributions(source: PrometheusSource, model: ModelConfig,
                              results: list[DriftResult]) -> list[PredictionDistribution]:
    drift = model.drift or DriftConfig()
    answers: dict[tuple[str, object], dict[str, dict[str, float | None]]] = {}

    def buckets(window: timedelta, at) -> dict[str, dict[str, float | None]]:
        key = (format_duration(window), at)
        if key not in answers:
            query = (f"sum by ({model.version_label}, le) "
                     f"(increase({model.predictions}[{format_duration(window)}]))")
            answers[key] = _by_version(source.instant(query, at), model.version_label)
        return answers[key]

    out = []
    for result in results:
        if result.reference_version is None or not any(c.column == PREDICTION_COLUMN for c in result.columns):
            continue
        reference = buckets(drift.reference, result.windows.reference_end).get(result.reference_version)
        current = buckets(drift.current, result.windows.current_end).get(result.version)
        if not reference or not current:
            continue
        try:
            ref_counts, cur_counts = bucket_counts(reference), bucket_counts(current)
        except HistogramError as exc:
            logger.warning("model %s %s: no distribution chart: %s", model.name, result.version, exc)
            continue
        if list(ref_counts.upper_bounds) != list(cur_counts.upper_bounds) or not ref_counts.total \
                or not cur_counts.total:
            continue
        bounds = (*map(float, ref_counts.upper_bounds), float("inf"))
        out.append(PredictionDistribution(
            model.name, result.version, bounds,
            tuple(float(c) for c in ref_counts.counts / ref_counts.total),
            tuple(float(c) for c in cur_counts.counts / cur_counts.total), result.reference_version))
    return out


def _by_version(result: InstantResult, version_label: str) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for sample in result.samples:
        if "le" in sample.labels:
            out.setdefault(sample.labels.get(version_label, ""), {})[sample.labels["le"]] = sample.value
    return out
