"""The headline: the few numbers leadership reads first, each with a plain sentence.

Pure: derived from the built sections, so the headline can never disagree with them.
"""

from __future__ import annotations

from monitor.report.model import (ChangeSection, CostSection, DriftSection, FreshnessSection, Headline,
                                  IncidentSection, SloSection, SloStatus)
from monitor.report.present import (format_duration_short, format_number, format_percent, format_signed_percent,
                                    format_usd)


def build_headline(slos: SloSection, incidents: IncidentSection, changes: ChangeSection,
                   drift: DriftSection, cost: CostSection, freshness: FreshnessSection) -> Headline:
    """Count SLO outcomes, incidents and rollbacks, and phrase each for a reader outside the team."""
    counts = {status: sum(row.status is status for row in slos.rows) for status in SloStatus}
    rollbacks = sum(row.rollback_requested for row in incidents.rows)
    sentences: list[str] = []

    if not slos.status.available:
        sentences.append(f"SLOs: not available ({slos.status.note}).")
    elif not slos.rows:
        sentences.append("No SLOs are defined.")
    else:
        parts = [f"{counts[SloStatus.MET]} of {len(slos.rows)} SLOs were met"]
        if counts[SloStatus.AT_RISK]:
            parts.append(f"{counts[SloStatus.AT_RISK]} met but at risk (under "
                         f"{format_percent(slos.at_risk_budget_below, 0)} of the error budget left)")
        if counts[SloStatus.MISSED]:
            missed = ", ".join(r.slo_id for r in slos.rows if r.status is SloStatus.MISSED)
            parts.append(f"{counts[SloStatus.MISSED]} missed ({missed})")
        if counts[SloStatus.NO_DATA]:
            parts.append(f"{counts[SloStatus.NO_DATA]} had no data and cannot be judged")
        sentences.append("; ".join(parts) + ".")

    if not incidents.status.available:
        sentences.append(f"Incidents: not available ({incidents.status.note}).")
    elif not incidents.rows:
        sentences.append("No alerts fired this period.")
    else:
        resolved = [r.time_to_resolve for r in incidents.rows if r.time_to_resolve is not None]
        text = f"{len(incidents.rows)} alert(s) fired"
        if resolved:
            mean = sum(resolved, start=resolved[0] * 0) / len(resolved)
            text += f"; those resolved took {format_duration_short(mean)} on average to resolve"
        open_count = sum(r.resolved_at is None for r in incidents.rows)
        if open_count:
            text += f"; {open_count} still open at the end of the period"
        sentences.append(text + ".")
    if changes.status.available and changes.deployed:
        cfr = changes.change_failure_rate
        sentences.append(f"{changes.deployed} model version(s) deployed, {changes.rolled_back} rolled back "
                         f"(change failure rate {format_percent(cfr, 0)}).")
    elif rollbacks:
        sentences.append(f"{rollbacks} rollback(s) requested.")

    if drift.status.available and drift.models_total:
        text = f"Drift is monitored for {drift.models_monitored} of {drift.models_total} models; "
        predictions = drift.prediction_drifting
        text += ("predictions drifted in " + ", ".join(f"{m} {v}" for m, v in predictions)) if predictions \
            else "no prediction drift"
        features: dict[tuple[str, str], list[str]] = {}
        for model, version, column in drift.feature_drifting:
            features.setdefault((model, version), []).append(column)
        if features:
            text += "; input features drifted in " + ", ".join(
                f"{m} {v} ({', '.join(cols)})" for (m, v), cols in features.items())
        sentences.append(text + ".")

    if cost.status.available and cost.fleet_cost_per_1k is not None:
        text = f"Serving cost {format_usd(cost.fleet_cost_per_1k, 4)} per 1,000 inferences"
        change = cost.fleet_cost_per_1k_wow_change
        text += (f", {format_signed_percent(change)} week over week" if change is not None
                 else " (no previous period to compare)")
        if cost.idle_periods:
            text += f"; {len(cost.idle_periods)} GPU idle period(s) wasted money"
        sentences.append(text + ".")
    elif not cost.status.available:
        sentences.append(f"Cost: not available ({cost.status.note}).")
    if cost.status.available:
        sentences.append(fleet_sentence(cost))

    quiet = [p for p in freshness.no_data]
    stale = [p for p in freshness.pipelines if p.stale_periods]
    if quiet or stale:
        sentences.append(f"Watch the gaps: {len(quiet)} no-data period(s) and {len(stale)} stale pipeline(s) "
                         "— quiet is not the same as healthy.")

    # An unavailable section is "no data" in the headline, never a reassuring 0.
    slos_known = slos.status.available
    known = incidents.status.available
    return Headline(counts[SloStatus.MET] if slos_known else None,
                    counts[SloStatus.AT_RISK] if slos_known else None,
                    counts[SloStatus.MISSED] if slos_known else None,
                    counts[SloStatus.NO_DATA] if slos_known else None,
                    len(incidents.rows) if known else None, rollbacks if known else None,
                    cost.fleet_cost_per_1k, cost.fleet_cost_per_1k_wow_change, tuple(sentences),
                    cost.fleet_gpu_utilization, cost.fleet_gpu_hours, cost.fleet_idle_cost_usd)


def fleet_sentence(cost: CostSection) -> str:
    """Fleet GPU utilisation over its GPU-hours and the idle cost; "no data" without GPU series, never 0%."""
    if cost.fleet_gpu_hours is None:
        return "Fleet GPU utilisation: no data (no GPU series in the period)."
    text = (f"Fleet GPU utilisation {format_percent(cost.fleet_gpu_utilization, 0)} over "
            f"{format_number(cost.fleet_gpu_hours)} GPU-hours on {cost.fleet_gpus} GPU(s)")
    if cost.fleet_idle_cost_usd is not None:
        text += f"; idle cost {format_usd(cost.fleet_idle_cost_usd, 0)}"
    return text + "."
