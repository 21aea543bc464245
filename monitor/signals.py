"""Signals: the numbers the compute stage hands to the rules engine (and to /metrics).

A signal is a named value with labels, like a Prometheus sample. `value` is None
for "no data" (no events in the window, a missing series, NaN): rules must never
read that as 0 or as healthy. The catalogue below is the contract between the
producers (slo/, drift/, cost/) and rule files: `monitor check` rejects a rule
naming a signal that is not here, and each producer emits exactly these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Signal:
    name: str
    labels: Mapping[str, str]
    value: float | None
    # Extra numbers worth showing beside the value (e.g. every window's burn rate),
    # carried into notifications as evidence. Not matched on.
    evidence: Mapping[str, float | None] = field(default_factory=dict)


# name -> (labels it carries, meaning). Booleans are 1.0 / 0.0 (None when undecidable).
CATALOGUE: dict[str, tuple[tuple[str, ...], str]] = {
    # SLOs (monitor.slo): one per SLO, or per SLO and window; a grouped SLO's per group,
    # carrying its group labels too (monitor.slo.groups).
    "slo_error_ratio": (("slo_id", "service", "slo", "window"), "bad / total events over the window"),
    "slo_burn_rate": (("slo_id", "service", "slo", "window"), "error ratio / (1 - objective)"),
    "slo_error_budget_remaining": (("slo_id", "service", "slo"), "1 - consumed budget share over the period"),
    "slo_page": (("slo_id", "service", "slo"), "1 when the page condition (1h&5m or 6h&30m) holds"),
    "slo_ticket": (("slo_id", "service", "slo"), "1 when the ticket condition (1d&2h or 3d&6h) holds"),
    # Drift (monitor.drift): per model, version and column ("prediction" for the score histogram).
    "drift_psi": (("model", "version", "column"), "population stability index"),
    "drift_js": (("model", "version", "column"), "Jensen-Shannon distance, base 2"),
    "drift_ks": (("model", "version", "column"), "two-sample Kolmogorov-Smirnov statistic"),
    "drift_ks_pvalue": (("model", "version", "column"), "asymptotic KS p-value"),
    "drift_wasserstein_norm": (("model", "version", "column"), "Wasserstein distance / reference std"),
    "drift_chi2_pvalue": (("model", "version", "column"), "chi-square p-value (categorical)"),
    "drift_detected": (("model", "version", "column"), "1 when the column's drift thresholds are crossed"),
    "drift_share": (("model", "version"), "drifted columns / columns"),
    # Cost and GPUs (monitor.cost): per model, and per model and version where versions exist.
    "model_inference_rate": (("model", "version"), "inferences per second over the last 5 minutes"),
    "cost_per_1k": (("model", "version"), "USD per 1,000 inferences over the trailing 7 days"),
    "cost_per_1k_wow_change": (("model", "version"), "relative change of cost_per_1k vs the week before"),
    "cost_usd": (("model", "version"), "serving cost over the trailing 7 days"),
    "idle_cost_usd": (("model", "version"), "GPU cost x (1 - utilisation) over the trailing 7 days"),
    "gpu_hours": (("model", "version"), "GPU-hours over the trailing 7 days"),
    "cost_allocation_info": (("model", "version", "allocation", "sharing"),
                             "1: how the trailing 7 days' cost was charged: allocation placement (its own pods' "
                             "GPUs) or inference_share; sharing exclusive, time_slicing_utilization or "
                             "time_slicing_even"),
    "gpu_utilization": (("model",), "mean GPU utilisation (0..1) over the last 15 minutes"),
    # LLMs (monitor.cost.tokens): only for models with token counters.
    "prompt_tokens": (("model", "version"), "prompt (input) tokens over the trailing 7 days"),
    "generation_tokens": (("model", "version"), "generated (output) tokens over the trailing 7 days"),
    "cost_per_1m_tokens": (("model", "version"),
                           "USD per 1,000,000 prompt + generation tokens over the trailing 7 days"),
    "cost_per_1m_tokens_wow_change": (("model", "version"), "relative change of cost_per_1m_tokens vs the week before"),
    # The fleet (monitor.cost.fleet): every GPU any model selects, each counted once.
    "fleet_gpu_hours": ((), "GPU-hours of the fleet over the trailing 7 days"),
    "fleet_gpu_utilization": ((), "fleet GPU utilisation (0..1) weighted by GPU-hours, trailing 7 days"),
    "fleet_idle_cost_usd": ((), "sum over the fleet's GPUs of cost x (1 - utilisation), trailing 7 days"),
    # The cycle itself (monitor.definition_errors): 1 per SLO, rule or model whose own
    # query the server rejects; absent once it works again (absence means fixed).
    "definition_error": (("kind", "name", "error"), "1 while the definition's query is rejected as wrong"),
    # Slow figures computed on their own schedule and reused between cycles (e.g. the weekly cost).
    "figures_age_seconds": (("figure",), "seconds since the instant the figure describes (its as-of time)"),
}

# Signals whose absence means false, as a PromQL series that stops matching: they are
# produced only while the thing they report is true, by a cycle that succeeded.
ABSENCE_MEANS_FALSE = frozenset({"definition_error"})
