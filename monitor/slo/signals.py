"""SLO results as the signals the rules engine consumes (names from `monitor.signals.CATALOGUE`)."""

from __future__ import annotations

from monitor.definition_errors import DefinitionError, DefinitionKind
from monitor.signals import Signal
from monitor.slo.evaluate import SloResult


def _flag(value: bool | None) -> float | None:
    return None if value is None else float(value)


def slo_signals(results: list[SloResult]) -> list[Signal]:
    """Per SLO: error ratio and burn rate per window, budget remaining, page and ticket (1/0, None = no data).

    An SLO whose own query the server rejected (`query_error`, not a server fault),
    or a grouped one over its `max_groups`, has no numbers: it gives one
    `definition_error` signal instead, named by the spec's id.

    A grouped spec's instance carries its group labels by their own names next to
    `slo_id` (the spec's id), so each group is its own alert and /metrics series.
    """
    signals: list[Signal] = []
    for result in results:
        spec = result.spec
        if result.query_error is not None and not result.query_error.server_fault:
            signals.append(DefinitionError.of(DefinitionKind.SLO, spec.id, result.query_error).signal())
            continue
        if spec.group_by and not result.group:
            continue  # a grouped spec with no instance: its problems are in the result, no series to give
        labels = {"slo_id": spec.id, "service": spec.service, "slo": spec.name, **result.group_labels}
        burn_evidence = {f"burn_rate_{key}": value for key, value in result.burn_rate.items()}
        for key, value in result.error_ratio.items():
            signals.append(Signal("slo_error_ratio", {**labels, "window": key}, value))
        for key, value in result.burn_rate.items():
            signals.append(Signal("slo_burn_rate", {**labels, "window": key}, value,
                                  {"error_ratio": result.error_ratio[key],
                                   "events_total": result.events_total.get(key)}))
        signals.append(Signal("slo_error_budget_remaining", labels, result.error_budget_remaining,
                              {"events_total": result.events_total.get(result.period_key),
                               "events_bad": result.events_bad.get(result.period_key),
                               "objective": spec.objective}))
        signals.append(Signal("slo_page", labels, _flag(result.page), burn_evidence))
        signals.append(Signal("slo_ticket", labels, _flag(result.ticket), burn_evidence))
    return signals
