"""The weekly report's data model: every number the page and report.json show.

Built from the producers (monitor.slo, monitor.drift, monitor.cost, the alert
history in the state store) by `monitor.report.build`; rendered by
`monitor.report.render`. Plain frozen dataclasses, so the HTML and the JSON are
two views of one object and cannot disagree. `None` is "no data", never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Mapping

from monitor.report.intervals import Interval
from monitor.report.period import ReportPeriod
from monitor.timeutil import iso_z

REPORT_SCHEMA_VERSION = 1
# monitor.drift's name for the prediction-score column.
PREDICTION_COLUMN = "prediction"


class SloStatus(Enum):
    MET = "met"
    AT_RISK = "at_risk"
    MISSED = "missed"
    NO_DATA = "no_data"


@dataclass(frozen=True)
class TimeSeries:
    """Points for a chart; values None where there was no data."""

    timestamps_s: tuple[float, ...]
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class SectionStatus:
    """Whether a section could be built; when not, why (shown instead of numbers)."""

    available: bool = True
    note: str = ""


# -- SLOs --------------------------------------------------------------------

@dataclass(frozen=True)
class SloRow:
    slo_id: str
    service: str
    name: str
    description: str
    objective: float                      # ratio, 0.999
    attainment: float | None              # good / total events over the report period
    budget_remaining: float | None        # over the SLO's own period, at the period's end
    budget_remaining_at_start: float | None
    status: SloStatus
    page_firing_at_end: bool | None = None
    ticket_firing_at_end: bool | None = None
    burn_rate_window: str = "1h"
    burn_rate: TimeSeries | None = None   # burn rate over `burn_rate_window`, through the period
    page_burn_rate_threshold: float | None = None  # the 1h page threshold (14.4 for a 30d period)
    problems: tuple[str, ...] = ()        # query problems met while measuring this SLO

    @property
    def budget_trend(self) -> float | None:
        """Change of budget remaining over the period (negative: budget consumed)."""
        if self.budget_remaining is None or self.budget_remaining_at_start is None:
            return None
        return self.budget_remaining - self.budget_remaining_at_start


@dataclass(frozen=True)
class SloSection:
    rows: tuple[SloRow, ...] = ()
    status: SectionStatus = field(default_factory=SectionStatus)
    # Policy used to classify rows, stated on the page.
    at_risk_budget_below: float = 0.25


# -- incidents and changes ------------------------------------------------------

@dataclass(frozen=True)
class IncidentRow:
    alertname: str
    severity: str
    subject: str                          # service or model the alert is about
    labels: Mapping[str, str]
    started_at: datetime | None           # the incident's start (see start_basis)
    first_notified_at: datetime | None    # first notification queued showing it firing
    resolved_at: datetime | None
    rollback_requested: bool
    condition_held_at: datetime | None = None  # when the alert's condition first held
    # "slo burn": traced back along the SLO's 5m burn rate; "alert condition": condition_held_at.
    start_basis: str = "alert condition"

    @property
    def time_to_detect(self) -> timedelta | None:
        if self.started_at is None or self.first_notified_at is None:
            return None
        return self.first_notified_at - self.started_at

    @property
    def time_to_resolve(self) -> timedelta | None:
        if self.started_at is None or self.resolved_at is None:
            return None
        return self.resolved_at - self.started_at


@dataclass(frozen=True)
class SeverityMttr:
    severity: str
    incidents: int
    resolved: int
    mean_time_to_resolve: timedelta | None
    mean_time_to_detect: timedelta | None


@dataclass(frozen=True)
class IncidentSection:
    rows: tuple[IncidentRow, ...] = ()
    mttr: tuple[SeverityMttr, ...] = ()
    status: SectionStatus = field(default_factory=SectionStatus)


@dataclass(frozen=True)
class VersionRow:
    model: str
    version: str
    first_seen: datetime | None
    last_seen: datetime | None
    deployed_in_period: bool
    rollback_requested: bool


@dataclass(frozen=True)
class ChangeSection:
    versions: tuple[VersionRow, ...] = ()
    status: SectionStatus = field(default_factory=SectionStatus)

    @property
    def deployed(self) -> int:
        return sum(v.deployed_in_period for v in self.versions)

    @property
    def rolled_back(self) -> int:
        return sum(v.deployed_in_period and v.rollback_requested for v in self.versions)

    @property
    def change_failure_rate(self) -> float | None:
        """Rolled-back versions / versions deployed in the period (None when none were deployed)."""
        return self.rolled_back / self.deployed if self.deployed else None


# -- drift ----------------------------------------------------------------------

@dataclass(frozen=True)
class DriftRow:
    model: str
    version: str
    column: str
    psi: float | None
    js: float | None
    ks: float | None
    wasserstein_norm: float | None
    drifted: bool | None


@dataclass(frozen=True)
class PredictionDistribution:
    """Bucket shares of the prediction histogram, reference vs current window."""

    model: str
    version: str
    bucket_upper_bounds: tuple[float, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]
    reference_version: str | None = None  # whose traffic the reference is (a new version's baseline)


@dataclass(frozen=True)
class DriftSection:
    models_total: int = 0
    models_monitored: int = 0
    rows: tuple[DriftRow, ...] = ()
    distributions: tuple[PredictionDistribution, ...] = ()
    status: SectionStatus = field(default_factory=SectionStatus)

    @property
    def coverage(self) -> float | None:
        return self.models_monitored / self.models_total if self.models_total else None

    @property
    def prediction_drifting(self) -> tuple[tuple[str, str], ...]:
        """(model, version) pairs whose predictions drifted."""
        return tuple(dict.fromkeys((r.model, r.version) for r in self.rows
                                   if r.drifted and r.column == PREDICTION_COLUMN))

    @property
    def feature_drifting(self) -> tuple[tuple[str, str, str], ...]:
        """(model, version, column) for each drifted input feature."""
        return tuple((r.model, r.version, r.column) for r in self.rows
                     if r.drifted and r.column != PREDICTION_COLUMN)


# -- cost -----------------------------------------------------------------------

@dataclass(frozen=True)
class CostRow:
    model: str
    version: str | None                   # None: the whole model
    inferences: float | None
    cost_usd: float | None
    cost_per_1k: float | None
    previous_cost_per_1k: float | None
    cost_per_1k_wow_change: float | None  # relative: 0.1 is +10%
    gpu_hours: float | None
    gpu_utilization: float | None         # 0..1
    idle_cost_usd: float | None
    # How the cost was charged (monitor.cost.allocation): "placement" (its own pods' GPUs) or
    # "inference_share", and how its GPUs were shared between pods ("" without GPUs).
    allocation: str = ""
    sharing: str = ""
    # LLMs (monitor.cost.tokens): None for models without token counters.
    prompt_tokens: float | None = None
    generation_tokens: float | None = None
    cost_per_1m_tokens: float | None = None        # USD per 1M prompt + generation tokens
    cost_per_1m_tokens_wow_change: float | None = None

    @property
    def counts_tokens(self) -> bool:
        return self.prompt_tokens is not None or self.generation_tokens is not None


@dataclass(frozen=True)
class DailyCost:
    day: datetime                         # the day's start (UTC)
    cost_usd_by_model: Mapping[str, float | None]


@dataclass(frozen=True)
class GpuIdlePeriod:
    model: str
    gpu: str
    interval: Interval
    mean_utilization: float | None        # 0..1 over the interval


@dataclass(frozen=True)
class CostSection:
    rows: tuple[CostRow, ...] = ()
    fleet_cost_usd: float | None = None
    fleet_inferences: float | None = None
    fleet_cost_per_1k: float | None = None
    fleet_previous_cost_per_1k: float | None = None
    daily: tuple[DailyCost, ...] = ()
    idle_periods: tuple[GpuIdlePeriod, ...] = ()
    idle_utilization_below: float = 0.10
    status: SectionStatus = field(default_factory=SectionStatus)
    # Every GPU the models select, each counted once (monitor.cost.fleet); None: no GPU series.
    fleet_gpus: int = 0
    fleet_gpu_hours: float | None = None
    fleet_gpu_utilization: float | None = None   # 0..1, weighted by GPU-hours
    fleet_idle_cost_usd: float | None = None

    @property
    def fleet_cost_per_1k_wow_change(self) -> float | None:
        if self.fleet_cost_per_1k is None or not self.fleet_previous_cost_per_1k:
            return None
        return self.fleet_cost_per_1k / self.fleet_previous_cost_per_1k - 1.0


# -- data freshness -------------------------------------------------------------

@dataclass(frozen=True)
class PipelineFreshness:
    pipeline: str
    last_success: datetime | None         # as of the period's end
    expected_interval: timedelta | None   # the usual gap between successes
    stale_periods: tuple[Interval, ...]   # from the first missed run to the next success


@dataclass(frozen=True)
class NoDataPeriod:
    kind: str                             # "no traffic" or "no samples"
    subject: str
    interval: Interval


@dataclass(frozen=True)
class FreshnessSection:
    pipelines: tuple[PipelineFreshness, ...] = ()
    no_data: tuple[NoDataPeriod, ...] = ()
    status: SectionStatus = field(default_factory=SectionStatus)


# -- the whole report -----------------------------------------------------------

@dataclass(frozen=True)
class Headline:
    """None where the section behind a figure was unavailable."""

    slos_met: int | None
    slos_at_risk: int | None
    slos_missed: int | None
    slos_no_data: int | None
    incidents: int | None
    rollbacks: int | None
    cost_per_1k: float | None
    cost_per_1k_wow_change: float | None
    sentences: tuple[str, ...]
    fleet_gpu_utilization: float | None = None
    fleet_gpu_hours: float | None = None
    fleet_idle_cost_usd: float | None = None


@dataclass(frozen=True)
class ReportModel:
    period: ReportPeriod
    generated_at: datetime
    headline: Headline
    slos: SloSection
    incidents: IncidentSection
    changes: ChangeSection
    drift: DriftSection
    cost: CostSection
    freshness: FreshnessSection
    warnings: tuple[str, ...] = ()


def to_json(value: Any) -> Any:
    """report.json's encoding: ISO 8601 UTC times, seconds for durations, null for no data."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value):
        out = {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
        # Derived figures are part of the contract too: a reader should not recompute them.
        for name in _DERIVED.get(type(value).__name__, ()):
            out[name] = to_json(getattr(value, name))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__} in report.json")


_DERIVED = {
    "SloRow": ("budget_trend",),
    "IncidentRow": ("time_to_detect", "time_to_resolve"),
    "ChangeSection": ("deployed", "rolled_back", "change_failure_rate"),
    "DriftSection": ("coverage", "prediction_drifting", "feature_drifting"),
    "CostSection": ("fleet_cost_per_1k_wow_change",),
    "Interval": ("duration",),
}


def report_json(model: ReportModel) -> dict:
    """The report as report.json: the same numbers as the page, for machines."""
    return {"schema_version": REPORT_SCHEMA_VERSION, **to_json(model)}
