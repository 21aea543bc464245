"""Cost per 1,000 inferences (and per 1M tokens), GPU-hours, utilisation and idle cost,
per model and version.

presets.py resolves a model's config into concrete series; queries.py writes the
GPU PromQL, compute.py the CPU/RAM PromQL, tokens.py the token PromQL and arithmetic;
collect.py runs it (the only module here that talks to Prometheus); allocation.py is
the pure math (placement per version, shared GPUs), mig.py the MIG slice sizes;
signals.py turns reports into rule signals.
"""

from __future__ import annotations

from monitor.cost.allocation import Allocation, CostReport, ModelCost, PriceSource, Sharing
from monitor.cost.collect import compute_costs, daily_costs, gpu_idle_periods, period_over_period, week_over_week
from monitor.cost.presets import ModelMetrics, resolve_model_metrics
from monitor.cost.signals import cost_signals

__all__ = ["Allocation", "CostReport", "ModelCost", "PriceSource", "Sharing", "ModelMetrics", "compute_costs",
           "cost_signals",
           "daily_costs", "gpu_idle_periods", "period_over_period", "resolve_model_metrics", "week_over_week"]
