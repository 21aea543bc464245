"""Fleet figures: GPU-hours, utilisation and idle cost over every GPU the models select (pure).

Built from a `CostReport`'s whole-model entries, so the fleet can never disagree with
the per-model figures and costs no query of its own. A GPU selected by several models
appears in each of their entries with the same hours and utilisation (allocation.py
measures it once, its longest presence); here it is counted once, since GPU-hours
belong to GPUs, not to the models sharing them.

- GPUs: physical GPUs (a GPU in MIG mode is one GPU however many instances it has).
- GPU-hours: the sum of each GPU unit's GPU-hours in the window (a MIG instance's hours
  times its share of the GPU, so a fully sliced GPU has the hours of one GPU).
- Utilisation: weighted by GPU-hours, sum(util_i x hours_i) / sum(hours_i), over the
  GPUs with a utilisation. Not the mean of the models' means: a model on one GPU and a
  model on eight would weigh the same.
- Idle cost: each GPU's cost x (1 - its utilisation), summed; the fleet-wide
  counterpart of every model's `idle_cost_usd`, at the same prices.
A window with no GPU series has no fleet figures (None): no data, never 0%.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.cost.allocation import CostReport, GpuAllocation, GpuKey


@dataclass(frozen=True)
class FleetFigures:
    gpus: int                          # distinct physical GPUs with hours in the window
    gpu_hours: float | None
    gpu_utilization: float | None      # 0..1, weighted by GPU-hours
    gpu_cost_usd: float | None
    idle_cost_usd: float | None

    def as_dict(self) -> dict:
        """The `fleet` object of `monitor cost --json`."""
        return {"gpus": self.gpus, "gpu_hours": self.gpu_hours, "gpu_utilization": self.gpu_utilization,
                "gpu_cost_usd": self.gpu_cost_usd, "idle_cost_usd": self.idle_cost_usd}


def fleet_figures(report: CostReport) -> FleetFigures:
    """The fleet's GPU-hours, GPU-hour-weighted utilisation and idle cost over `report`'s window."""
    gpus: dict[GpuKey, GpuAllocation] = {}
    for cost in report.models:
        if cost.version is not None:
            continue  # versions repeat their model's GPUs (or none)
        for g in cost.gpus:
            if g.hours > 0:
                gpus.setdefault(g.gpu, g)
    if not gpus:
        return FleetFigures(0, None, None, None, None)
    ordered = [gpus[key] for key in sorted(gpus)]  # one summation order in every process
    hours = sum(g.hours for g in ordered)
    measured = [g for g in ordered if g.utilization is not None]
    measured_hours = sum(g.hours for g in measured)
    utilization = (sum(g.utilization * g.hours for g in measured) / measured_hours  # type: ignore[operator]
                   if measured_hours > 0 else None)
    idle = (sum(g.cost_usd * (1.0 - g.utilization) for g in measured)  # type: ignore[operator]
            if measured else None)
    physical = {(g.gpu.node, g.gpu.index, g.gpu.uuid) for g in ordered}
    return FleetFigures(len(physical), hours, utilization, sum(g.cost_usd for g in ordered), idle)
