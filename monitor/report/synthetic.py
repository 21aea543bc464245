"""A generated report model of any size: for the benchmark and the template tests.

Not a fleet simulation (that is monitor.simulate, read through Prometheus); this
fills the report's data model directly, with a hostile label value where asked,
so rendering can be measured and checked without any producer.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from monitor.report.headline import build_headline
from monitor.report.intervals import Interval
from monitor.report.model import (ChangeSection, CostRow, CostSection, DailyCost, DriftRow, DriftSection,
                                  FreshnessSection, IncidentRow, IncidentSection, NoDataPeriod, PipelineFreshness,
                                  PredictionDistribution, ReportModel, SeverityMttr, SloRow, SloSection, SloStatus,
                                  TimeSeries, VersionRow, GpuIdlePeriod)
from monitor.report.period import ReportPeriod

SCORE_BOUNDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, float("inf"))


def synthetic_report(period: ReportPeriod, services: int, models: int, seed: int = 0,
                     hostile_label: str | None = None) -> ReportModel:
    """A plausible report for `services` services (one SLO each) and `models` models (two versions each)."""
    rng = np.random.default_rng(seed)
    hours = int(period.length / timedelta(hours=1))
    timestamps = tuple(period.start.timestamp() + 3600 * (i + 1) for i in range(hours))

    def name(kind: str, i: int) -> str:
        return hostile_label if (hostile_label and i == 0) else f"{kind}-{i:02d}"

    slo_rows = []
    for i in range(services):
        burn = np.abs(rng.normal(0.5, 0.4, hours))
        if i % 7 == 3:
            burn[hours // 2: hours // 2 + 3] += 20
        attainment = 1 - float(burn.mean()) * 0.001
        budget = float(rng.uniform(-0.2, 1.0))
        status = SloStatus.MISSED if attainment < 0.999 else SloStatus.AT_RISK if budget < 0.25 else SloStatus.MET
        slo_rows.append(SloRow(f"{name('service', i)}-availability", name("service", i), "availability",
                               "99.9% of requests succeed", 0.999, attainment, budget, min(1.0, budget + 0.1),
                               status, burn_rate=TimeSeries(timestamps, tuple(round(float(v), 4) for v in burn))))
    incidents = []
    for i in range(max(1, services // 5)):
        start = period.start + timedelta(hours=float(rng.uniform(0, hours - 10)))
        incidents.append(IncidentRow(f"Alert{i}", "page" if i % 2 else "ticket", name("service", i),
                                     {"service": name("service", i)}, start, start + timedelta(minutes=3),
                                     start + timedelta(minutes=float(rng.uniform(10, 300))), i % 4 == 0))
    versions, drift_rows, distributions, cost_rows, idle = [], [], [], [], []
    days = int(period.length / timedelta(days=1)) or 1
    daily_by_model: list[dict[str, float | None]] = [{} for _ in range(days)]
    for i in range(models):
        model = name("model", i)
        reference = rng.dirichlet(np.ones(len(SCORE_BOUNDS)) * 5)
        for version in ("v1", "v2"):
            current = rng.dirichlet(np.ones(len(SCORE_BOUNDS)) * 5)
            versions.append(VersionRow(model, version, period.start, period.end, version == "v2", i % 5 == 0))
            drift_rows.append(DriftRow(model, version, "prediction", float(rng.uniform(0, 0.4)),
                                       float(rng.uniform(0, 0.2)), float(rng.uniform(0, 0.3)),
                                       float(rng.uniform(0, 0.2)), bool(i % 3 == 0)))
            distributions.append(PredictionDistribution(model, version, SCORE_BOUNDS,
                                                        tuple(map(float, reference)), tuple(map(float, current))))
        cost = float(rng.uniform(100, 5000))
        inferences = float(rng.uniform(1e6, 1e8))
        cost_rows.append(CostRow(model, None, inferences, cost, cost / inferences * 1000,
                                 cost / inferences * 1000 * 0.95, 1 / 0.95 - 1, cost / 2.5, 0.4, cost * 0.6))
        for day in daily_by_model:
            day[model] = cost / days
        if i % 4 == 1:
            idle.append(GpuIdlePeriod(model, "gpu-node-1/gpu0",
                                      Interval(period.start + timedelta(hours=30), period.start + timedelta(hours=38)),
                                      0.02))
    total_cost = sum(r.cost_usd or 0 for r in cost_rows)
    total_inferences = sum(r.inferences or 0 for r in cost_rows)
    mttr = (SeverityMttr("page", 1, 1, timedelta(minutes=40), timedelta(minutes=3)),)
    slos = SloSection(tuple(slo_rows))
    incident_section = IncidentSection(tuple(incidents), mttr)
    changes = ChangeSection(tuple(versions))
    drift = DriftSection(models, models, tuple(drift_rows), tuple(distributions))
    cost_section = CostSection(tuple(cost_rows), total_cost, total_inferences, total_cost / total_inferences * 1000,
                               total_cost / total_inferences * 1000 * 0.97,
                               tuple(DailyCost(period.start + timedelta(days=d), daily_by_model[d])
                                     for d in range(days)), tuple(idle), fleet_gpus=models,
                               fleet_gpu_hours=sum(r.gpu_hours or 0 for r in cost_rows), fleet_gpu_utilization=0.4,
                               fleet_idle_cost_usd=sum(r.idle_cost_usd or 0 for r in cost_rows))
    freshness = FreshnessSection(
        (PipelineFreshness(name("pipeline", 0), period.end - timedelta(minutes=20), timedelta(minutes=30),
                           (Interval(period.start + timedelta(hours=50), period.start + timedelta(hours=55)),)),),
        (NoDataPeriod("no traffic", name("model", 0), Interval(period.end - timedelta(hours=5), period.end)),))
    headline = build_headline(slos, incident_section, changes, drift, cost_section, freshness)
    return ReportModel(period, datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc), headline, slos,
                       incident_section, changes, drift, cost_section, freshness)
