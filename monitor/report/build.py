"""Build the report model for a period from the producers: sources -> compute -> model.

Each section is built independently; a section whose producer fails says so on
the page (and in report.json) instead of taking the whole report down, because a
report that cannot be written at all hides everything else it knew.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Callable, TypeVar

from monitor.config import Config
from monitor.errors import MonitorError
from monitor.progress import Steps
from monitor.report.cost_section import build_cost_section
from monitor.report.drift_section import build_drift_section
from monitor.report.freshness import build_freshness_section
from monitor.report.headline import build_headline
from monitor.report.incident_start import slo_incident_start
from monitor.report.incidents import build_change_section, build_incident_section, mttr_by_severity
from monitor.report.model import (ChangeSection, CostSection, DriftSection, FreshnessSection, IncidentSection,
                                  ReportModel, SectionStatus, SloSection)
from monitor.report.period import ReportPeriod
from monitor.report.slo_section import build_slo_section
from monitor.slo import load_slo_specs
from monitor.sources.prometheus import PrometheusSource, PrometheusUnavailable
from monitor.store import StateStore

logger = logging.getLogger(__name__)
Section = TypeVar("Section")


def trace_slo_incident_starts(source: PrometheusSource, config: Config,
                              incidents: IncidentSection) -> IncidentSection:
    """Replace an SLO alert's start (when its condition held) with when its SLI began burning."""
    specs = {spec.id: spec for spec in load_slo_specs(config)}
    rows = []
    for row in incidents.rows:
        spec = specs.get(row.labels.get("slo_id", ""))
        if spec is not None and row.condition_held_at is not None:
            traced = slo_incident_start(source, spec, row.condition_held_at)
            if traced is not None:
                row = replace(row, started_at=traced, start_basis="slo burn")
        rows.append(row)
    rows.sort(key=lambda r: (r.started_at or r.first_notified_at or r.condition_held_at, r.alertname, r.subject))
    return replace(incidents, rows=tuple(rows), mttr=tuple(mttr_by_severity(rows)))


def build_report(source: PrometheusSource, config: Config, period: ReportPeriod, generated_at: datetime,
                 store: StateStore | None = None) -> ReportModel:
    """Every section of the report for `period`; raises only when Prometheus is unreachable."""
    if not source.is_ready():
        # Every section would fail one query at a time; say it once.
        raise PrometheusUnavailable("(readiness)", f"Prometheus at {source.url} is not reachable or not ready")
    with Steps(7, f"report {period.key}") as steps:
        return _build_sections(source, config, period, generated_at, store, steps)


def _build_sections(source: PrometheusSource, config: Config, period: ReportPeriod, generated_at: datetime,
                    store: StateStore | None, steps: Steps) -> ReportModel:
    warnings: list[str] = []

    def section(name: str, build: Callable[[], Section], unavailable: Callable[[str], Section]) -> Section:
        try:
            return build()
        except PrometheusUnavailable:
            raise  # nothing to report on: better no report than an empty one
        except MonitorError as exc:
            logger.warning("report %s: %s section failed: %s", period.key, name, exc)
            warnings.append(f"{name}: {exc}")
            return unavailable(str(exc))
        finally:
            steps.advance(name)

    slos = section("SLOs", lambda: build_slo_section(source, load_slo_specs(config), period),
                   lambda why: SloSection(status=SectionStatus(False, why)))
    incidents = section("incidents", lambda: build_incident_section(store, period),
                        lambda why: IncidentSection(status=SectionStatus(False, why)))
    changes = section("change health", lambda: build_change_section(store, period),
                      lambda why: ChangeSection(status=SectionStatus(False, why)))
    drift = section("drift", lambda: build_drift_section(source, config, period, store),
                    lambda why: DriftSection(status=SectionStatus(False, why)))
    cost = section("cost", lambda: build_cost_section(source, config, period),
                   lambda why: CostSection(status=SectionStatus(False, why)))
    freshness = section("freshness", lambda: build_freshness_section(source, config, period),
                        lambda why: FreshnessSection(status=SectionStatus(False, why)))
    for name, status in (("SLOs", slos.status), ("drift", drift.status), ("cost", cost.status),
                         ("freshness", freshness.status), ("incidents", incidents.status)):
        if status.available and status.note:
            warnings.append(f"{name}: {status.note}")
    if incidents.rows:
        incidents = section("incidents", lambda: trace_slo_incident_starts(source, config, incidents),
                            lambda why: incidents)
    headline = build_headline(slos, incidents, changes, drift, cost, freshness)
    return ReportModel(period, generated_at, headline, slos, incidents, changes, drift, cost, freshness,
                       tuple(dict.fromkeys(warnings)))
