"""The cost math: GPU-hours, utilisation, cost, idle cost and cost per 1,000 inferences.

Pure: takes what was measured over one window (per model: inferences by version, and
per GPU: the minutes its series existed and the sum of its utilisation samples) plus
prices, and returns a `CostReport`. No Prometheus, no clock.

Allocation policy, stated in every report entry it affects:
- A GPU selected by several models is split between them by their share of
  inferences in the window (equally when none of them served any).
- GPUs belong to models, not versions: a model's cost is split across its versions
  by each version's share of the model's inferences, so every version of a model has
  the model's cost per 1k.
- Price per GPU-hour: OpenCost's `node_gpu_hourly_cost` for the GPU's node when
  Prometheus has it, else `cost.pricing.gpu_models[modelName]`, else `cost.pricing.GPU`.
- CPU and RAM are the model's own, per node (monitor.cost.compute), priced by OpenCost's
  node prices where measured, else by `CPU` / `RAM`; a version's share is its share of
  inferences, like GPU cost.
- Cost per 1M tokens (monitor.cost.tokens) divides the same cost by prompt + generation
  tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Mapping, Sequence

from monitor.config import Pricing
from monitor.cost.compute import ComputeUsage, Resource, compute_cost
from monitor.cost.tokens import cost_per_1m_tokens, total_tokens
from monitor.timeutil import iso_z

MINUTES_PER_HOUR = 60.0


class PriceSource(Enum):
    CONFIG = "config"
    NODE_GPU_HOURLY_COST = "node_gpu_hourly_cost"


@dataclass(frozen=True, order=True)
class GpuKey:
    """One physical GPU as dcgm-exporter names it."""

    node: str          # dcgm-exporter's Hostname (older) or hostname (newer) label
    index: str         # the `gpu` label
    uuid: str
    model_name: str    # dcgm-exporter's modelName, e.g. "NVIDIA A100-SXM4-80GB"

    @property
    def name(self) -> str:
        return f"{self.node}/gpu{self.index}"


@dataclass(frozen=True)
class GpuUsage:
    """A GPU as selected by one model over one window, sampled on a one-minute grid."""

    gpu: GpuKey
    present_minutes: float            # grid minutes at which the GPU's series existed
    utilization_percent_sum: float    # sum of DCGM_FI_DEV_GPU_UTIL over those minutes


@dataclass(frozen=True)
class ModelUsage:
    """What was measured for one model over one window."""

    model: str
    # Increase of the inference counter per version label value ("" when the counter
    # has no version label); None when the counter has no series in the window.
    inferences_by_version: Mapping[str, float] | None
    gpus: Sequence[GpuUsage] = ()
    cpu_core_hours: float | None = None
    ram_gib_hours: float | None = None
    # The model's configured `gpus` selector; None when it has none (a CPU-only model).
    gpu_selector: str | None = None
    # Token counts per version label value, like inferences (monitor.cost.tokens); None
    # when the model has no such counter or it has no series in the window.
    prompt_tokens_by_version: Mapping[str, float] | None = None
    generation_tokens_by_version: Mapping[str, float] | None = None
    # CPU and RAM per node, with the part OpenCost priced (monitor.cost.compute). When
    # set, it prices CPU and RAM; cpu_core_hours / ram_gib_hours are then its totals.
    compute: Sequence[ComputeUsage] = ()


@dataclass(frozen=True)
class GpuAllocation:
    """One GPU's part in a model's cost: its hours, price and the model's share of it."""

    gpu: GpuKey
    hours: float
    utilization: float | None
    price_usd_per_hour: float
    price_source: PriceSource
    share: float                       # the model's share of this GPU (1.0 unless shared)
    shared_with: tuple[str, ...] = ()  # other models selecting the same GPU
    split_basis: str = "sole user"     # how `share` was decided

    @property
    def cost_usd(self) -> float:
        return self.hours * self.price_usd_per_hour


@dataclass(frozen=True)
class ModelCost:
    """Cost figures for a whole model (version None) or one of its versions."""

    model: str
    version: str | None
    inferences: float | None
    gpu_hours: float | None
    gpu_utilization: float | None
    cost_usd: float | None
    idle_cost_usd: float | None
    cost_per_1k: float | None
    price_source: PriceSource | None
    gpu_cost_usd: float | None = None
    cpu_cost_usd: float | None = None
    ram_cost_usd: float | None = None
    cpu_core_hours: float | None = None
    ram_gib_hours: float | None = None
    # For a version: its share of the model's inferences, by which the model's cost is split.
    inference_share: float | None = None
    # GPU-hours priced by each source, so a model spanning priced and unpriced nodes shows both.
    gpu_hours_by_price_source: Mapping[str, float] = field(default_factory=dict)
    gpus: tuple[GpuAllocation, ...] = ()
    allocation: str = ""   # the split applied, in words
    # LLMs (monitor.cost.tokens): tokens over the window and USD per 1,000,000 of them,
    # prompt + generation tokens together.
    prompt_tokens: float | None = None
    generation_tokens: float | None = None
    cost_per_1m_tokens: float | None = None

    def as_dict(self) -> dict:
        """The `monitor cost --json` entry: the documented keys first, then details."""
        return {
            "model": self.model, "version": self.version, "inferences": self.inferences,
            "gpu_hours": self.gpu_hours, "gpu_utilization": self.gpu_utilization, "cost_usd": self.cost_usd,
            "idle_cost_usd": self.idle_cost_usd, "cost_per_1k": self.cost_per_1k,
            "price_source": self.price_source.value if self.price_source else None,
            "gpu_cost_usd": self.gpu_cost_usd, "cpu_cost_usd": self.cpu_cost_usd,
            "ram_cost_usd": self.ram_cost_usd, "cpu_core_hours": self.cpu_core_hours,
            "ram_gib_hours": self.ram_gib_hours, "inference_share": self.inference_share,
            "gpu_hours_by_price_source": dict(self.gpu_hours_by_price_source),
            "allocation": self.allocation,
            "prompt_tokens": self.prompt_tokens, "generation_tokens": self.generation_tokens,
            "tokens": total_tokens(self.prompt_tokens, self.generation_tokens),
            "cost_per_1m_tokens": self.cost_per_1m_tokens,
            "gpus": [{"gpu": g.gpu.name, "node": g.gpu.node, "index": g.gpu.index, "uuid": g.gpu.uuid,
                      "model_name": g.gpu.model_name, "hours": g.hours, "utilization": g.utilization,
                      "price_usd_per_hour": g.price_usd_per_hour, "price_source": g.price_source.value,
                      "share": g.share, "shared_with": list(g.shared_with), "split_basis": g.split_basis}
                     for g in self.gpus],
        }


@dataclass(frozen=True)
class CostReport:
    start: datetime
    end: datetime
    models: tuple[ModelCost, ...]
    # Server warnings (partial data) met while collecting: the figures may be low.
    warnings: tuple[str, ...] = ()

    def entry(self, model: str, version: str | None = None) -> ModelCost:
        for cost in self.models:
            if cost.model == model and cost.version == version:
                return cost
        raise KeyError((model, version))

    def as_dict(self) -> dict:
        """The documented `monitor cost --json` shape."""
        out = {"from": iso_z(self.start), "to": iso_z(self.end),
               "models": [m.as_dict() for m in self.models]}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def gpu_price(gpu: GpuKey, pricing: Pricing, node_prices: Mapping[str, float]) -> tuple[float, PriceSource]:
    """USD per hour for a GPU: OpenCost's node price wins, then the per-model price, then `GPU`."""
    if gpu.node in node_prices:
        return node_prices[gpu.node], PriceSource.NODE_GPU_HOURLY_COST
    return pricing.gpu_models.get(gpu.model_name, pricing.GPU), PriceSource.CONFIG


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def cost_per_1k(cost_usd: float | None, inferences: float | None) -> float | None:
    """USD per 1,000 inferences; None (no data) when nothing was served or nothing is priced."""
    if cost_usd is None or not inferences or inferences <= 0:
        return None
    return cost_usd / inferences * 1000.0


def allocate(start: datetime, end: datetime, usages: Sequence[ModelUsage], pricing: Pricing,
             node_prices: Mapping[str, float], warnings: Sequence[str] = ()) -> CostReport:
    """Price each model's GPUs (and CPU/RAM), split shared GPUs and versions by inferences."""
    totals = {u.model: (sum(u.inferences_by_version.values()) if u.inferences_by_version is not None else None)
              for u in usages}
    # Which models select each GPU, and the longest presence any of them saw (the GPU's hours).
    users: dict[GpuKey, list[str]] = {}
    present: dict[GpuKey, GpuUsage] = {}
    for usage in usages:
        for g in usage.gpus:
            users.setdefault(g.gpu, []).append(usage.model)
            if g.gpu not in present or g.present_minutes > present[g.gpu].present_minutes:
                present[g.gpu] = g

    entries: list[ModelCost] = []
    for usage in usages:
        allocations = tuple(_allocate_gpu(present[g.gpu], usage.model, users[g.gpu], totals, pricing, node_prices)
                            for g in sorted(usage.gpus, key=lambda g: g.gpu))
        whole = _model_cost(usage, totals[usage.model], allocations, pricing)
        entries.append(whole)
        entries.extend(_version_costs(usage, whole))
    return CostReport(start, end, tuple(entries), (*warnings, *unmatched_gpu_warnings(usages, totals)))


def unmatched_gpu_warnings(usages: Sequence[ModelUsage], totals: Mapping[str, float | None]) -> list[str]:
    """A warning per model whose `gpus` selector found no GPU while the model served inferences.

    Its GPU cost is unknown, not zero: the selector is most likely wrong (a label the
    exporter does not set, a typo, a namespace that moved), and a cost per 1k without
    its GPUs would read as cheap.
    """
    return [f"model {u.model!r}: gpus selector {u.gpu_selector} matched no dcgm-exporter GPU series "
            f"while it served {totals[u.model]:,.0f} inferences; its GPU cost is unknown (not 0): check the "
            f"selector's labels against the exporter's series"
            for u in usages if u.gpu_selector is not None and not u.gpus and (totals.get(u.model) or 0) > 0]


def _allocate_gpu(usage: GpuUsage, model: str, users: list[str], totals: Mapping[str, float | None],
                  pricing: Pricing, node_prices: Mapping[str, float]) -> GpuAllocation:
    hours = usage.present_minutes / MINUTES_PER_HOUR
    utilization = _ratio(usage.utilization_percent_sum / 100.0, usage.present_minutes)
    price, source = gpu_price(usage.gpu, pricing, node_prices)
    others = tuple(sorted(set(users) - {model}))
    if not others:
        return GpuAllocation(usage.gpu, hours, utilization, price, source, 1.0)
    # Sorted, so the floating-point sum (and every cost built on it) is the same in every process.
    served = {m: totals.get(m) or 0.0 for m in sorted(set(users))}
    total = sum(served.values())
    if total > 0:
        share, basis = served[model] / total, "share of inferences among the models on this GPU"
    else:
        share, basis = 1.0 / len(served), "split equally: no model on this GPU served inferences"
    return GpuAllocation(usage.gpu, hours, utilization, price, source, share, others, basis)


def _model_cost(usage: ModelUsage, inferences: float | None, gpus: Sequence[GpuAllocation],
                pricing: Pricing) -> ModelCost:
    gpu_hours = gpu_cost = idle_cost = utilization = None
    by_source: dict[str, float] = {}
    price_source = None
    if gpus:
        gpu_hours = sum(g.share * g.hours for g in gpus)
        gpu_cost = sum(g.share * g.cost_usd for g in gpus)
        # Idle cost per GPU, then summed: equals GPU cost x (1 - utilisation) when the
        # GPUs have one price, and stays right when they do not.
        idle_cost = sum(g.share * g.cost_usd * (1.0 - g.utilization) for g in gpus if g.utilization is not None)
        measured = [g for g in gpus if g.utilization is not None and g.hours > 0]
        # Weighted by the model's GPU-hours on each GPU; by plain hours when its share is 0
        # (a model that served nothing still has a GPU whose utilisation is worth showing).
        weights = [g.share * g.hours for g in measured]
        if sum(weights) <= 0:
            weights = [g.hours for g in measured]
        if measured and sum(weights) > 0:
            utilization = sum(w * g.utilization for w, g in zip(weights, measured)) / sum(weights)
        for g in gpus:
            by_source[g.price_source.value] = by_source.get(g.price_source.value, 0.0) + g.hours
        # The documented field has one value: the source that priced most of the GPU-hours.
        price_source = PriceSource(max(by_source, key=lambda s: by_source[s])) if by_source else None
    if usage.compute:
        cpu_cost = compute_cost(usage.compute, Resource.CPU, pricing.CPU)
        ram_cost = compute_cost(usage.compute, Resource.RAM, pricing.RAM)
    else:
        cpu_cost = usage.cpu_core_hours * pricing.CPU if usage.cpu_core_hours is not None else None
        ram_cost = usage.ram_gib_hours * pricing.RAM if usage.ram_gib_hours is not None else None
    parts = [c for c in (gpu_cost, cpu_cost, ram_cost) if c is not None]
    cost = sum(parts) if parts else None
    shared = [g for g in gpus if g.shared_with]
    allocation = "; ".join(f"{g.gpu.name} shared with {', '.join(g.shared_with)}: {g.share:.1%} "
                           f"({g.split_basis})" for g in shared)
    prompt, generation = _summed(usage.prompt_tokens_by_version), _summed(usage.generation_tokens_by_version)
    return ModelCost(usage.model, None, inferences, gpu_hours, utilization, cost, idle_cost,
                     cost_per_1k(cost, inferences), price_source, gpu_cost, cpu_cost, ram_cost,
                     usage.cpu_core_hours, usage.ram_gib_hours, 1.0 if inferences else None, by_source,
                     tuple(gpus), allocation or "sole user of its GPUs", prompt, generation,
                     cost_per_1m_tokens(cost, total_tokens(prompt, generation)))


def _summed(by_version: Mapping[str, float] | None) -> float | None:
    return sum(by_version.values()) if by_version is not None else None


def _scaled(value: float | None, share: float | None) -> float | None:
    return None if value is None or share is None else value * share


def _version_costs(usage: ModelUsage, whole: ModelCost) -> list[ModelCost]:
    by_version = usage.inferences_by_version or {}
    if not any(by_version):  # only the "" key: the counter has no version label
        return []
    total = sum(by_version.values())
    out = []
    for version in sorted(by_version):
        inferences = by_version[version]
        share = inferences / total if total > 0 else None
        cost = _scaled(whole.cost_usd, share)
        allocation = (f"{share:.1%} of {usage.model}'s cost: versions share the model's GPUs, "
                      f"split by share of inferences" if share is not None else
                      f"not split: {usage.model} served no inferences in the window")
        # Tokens by the token counters' own version label; none where they carry none.
        prompt = (usage.prompt_tokens_by_version or {}).get(version)
        generation = (usage.generation_tokens_by_version or {}).get(version)
        out.append(ModelCost(
            # A series without the version label shows as version "" rather than merging
            # into the whole-model entry (version None).
            usage.model, version, inferences, _scaled(whole.gpu_hours, share), whole.gpu_utilization,
            cost, _scaled(whole.idle_cost_usd, share), cost_per_1k(cost, inferences), whole.price_source,
            _scaled(whole.gpu_cost_usd, share), _scaled(whole.cpu_cost_usd, share),
            _scaled(whole.ram_cost_usd, share), _scaled(whole.cpu_core_hours, share),
            _scaled(whole.ram_gib_hours, share), share, dict(whole.gpu_hours_by_price_source), (), allocation,
            prompt, generation, cost_per_1m_tokens(cost, total_tokens(prompt, generation))))
    return out


def cost_per_1k_change(current: CostReport, previous: CostReport) -> dict[tuple[str, str | None], float | None]:
    """Relative change of cost per 1k, (current - previous) / previous, per (model, version).

    None where either period has no cost per 1k, or the previous one is 0.
    """
    before = {(m.model, m.version): m.cost_per_1k for m in previous.models}
    return {(m.model, m.version): _relative_change(m.cost_per_1k, before.get((m.model, m.version)))
            for m in current.models}


def _relative_change(now: float | None, before: float | None) -> float | None:
    if now is None or before is None or before == 0:
        return None
    return (now - before) / before
