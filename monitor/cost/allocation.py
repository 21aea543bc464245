"""The cost math: GPU-hours, utilisation, cost, idle cost and cost per 1,000 inferences.

Pure: takes what was measured over one window (per model: inferences by version, and
per GPU: the minutes its series existed and the sum of its utilisation samples) plus
prices, and returns a `CostReport`. No Prometheus, no clock.

Allocation policy, stated in every report entry it affects (`allocation`, `sharing`):
- A GPU unit is a whole GPU or one MIG instance (`GPU_I_ID`). A MIG instance holds its
  profile's share of the GPU (monitor.cost.mig): its GPU-hours are its hours times that
  share, priced at the GPU's price, or at `cost.pricing.mig_profiles[profile]` per
  instance-hour when configured.
- Pods on one unit: pods one after another (a rollout) each get their own minutes.
  Pods on it at the same time (time-slicing: their minutes add up to more than the
  unit's) split it by each pod's SM utilisation where the exporter gives it per
  process (`time_slicing_utilization`), else by their minutes on it, evenly while
  they run together (`time_slicing_even`).
- One pod selected by several models (one server hosting several models) is split
  between them by their share of inferences in the window (equally when none served).
- Versions: with `placement` configured and the pods' versions known, each version is
  charged the GPU time of its own pods (`allocation: placement`); GPU time on pods of
  no known version, and CPU and RAM, are split by share of inferences. Otherwise a
  model's cost is split across its versions by share of inferences
  (`allocation: inference_share`), and every version has the model's cost per 1k.
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
from monitor.cost.mig import slice_size
from monitor.cost.tokens import cost_per_1m_tokens, total_tokens
from monitor.timeutil import iso_z

MINUTES_PER_HOUR = 60.0
# Without staleness markers (backfilled history, a scrape target that vanished) a pod's
# last sample stays visible for the 5-minute lookback, overlapping its successor's.
HANDOVER_MINUTES = 5.0


class PriceSource(Enum):
    CONFIG = "config"
    NODE_GPU_HOURLY_COST = "node_gpu_hourly_cost"
    MIG_PROFILE = "mig_profiles"


class Allocation(Enum):
    """How a figure was charged its GPUs."""

    PLACEMENT = "placement"              # the GPUs its own pods held
    INFERENCE_SHARE = "inference_share"  # split by share of inferences (placement unknown, or one pod shared)


class Sharing(Enum):
    """How one GPU unit was divided between the pods on it."""

    EXCLUSIVE = "exclusive"                                 # one pod at a time (or no pod labels)
    TIME_SLICING_UTILIZATION = "time_slicing_utilization"   # pods at once, by their processes' SM use
    TIME_SLICING_EVEN = "time_slicing_even"                 # pods at once, by their minutes on it


@dataclass(frozen=True, order=True)
class GpuKey:
    """One physical GPU as dcgm-exporter names it."""

    node: str          # dcgm-exporter's Hostname (older) or hostname (newer) label
    index: str         # the `gpu` label
    uuid: str
    model_name: str    # dcgm-exporter's modelName, e.g. "NVIDIA A100-SXM4-80GB"
    mig_profile: str = ""    # GPU_I_PROFILE of a MIG instance ("" for a whole GPU)
    mig_instance: str = ""   # GPU_I_ID

    @property
    def name(self) -> str:
        base = f"{self.node}/gpu{self.index}"
        return f"{base}/mig{self.mig_instance}({self.mig_profile})" if self.mig_profile or self.mig_instance else base


@dataclass(frozen=True)
class PodTime:
    """One pod's time on one GPU unit over the window (grid minutes its series existed)."""

    namespace: str
    pod: str
    minutes: float
    version: str | None = None            # from the model's placement; None when not known
    # Sum over grid minutes of its processes' SM share (monitor_gpu_process_sm_utilization_ratio);
    # None when the exporter gave none for it.
    sm_utilization_sum: float | None = None


@dataclass(frozen=True)
class GpuUsage:
    """A GPU unit (a GPU or a MIG instance) as selected by one model over one window, on a one-minute grid."""

    gpu: GpuKey
    present_minutes: float            # grid minutes at which the unit's series existed
    utilization_percent_sum: float    # sum of its utilisation (percent) over those minutes
    pods: tuple[PodTime, ...] = ()    # the selected pods on it; empty when the series name no pod


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
    # Whether the model's pods are mapped to versions (`models[].placement`).
    placement: bool = False


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
    sharing: Sharing = Sharing.EXCLUSIVE
    # A MIG instance's share of its GPU (1.0 for a whole GPU); `hours` are GPU-hours, i.e.
    # the instance's hours times this.
    slice_fraction: float = 1.0
    slice_basis: str = ""
    # The model's share of this unit by version (None: pods of no known version), summing to 1.
    version_shares: Mapping[str | None, float] = field(default_factory=dict)
    # Whether a pod on it is also another model's, split by share of inferences.
    split_by_inferences: bool = False

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
    allocation: Allocation = Allocation.PLACEMENT
    allocation_detail: str = ""   # the split applied, in words
    # How the GPU units holding most of its GPU-hours were divided between pods; None without GPUs.
    sharing: Sharing | None = None
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
            "allocation": self.allocation.value, "allocation_detail": self.allocation_detail,
            "sharing": self.sharing.value if self.sharing else None,
            "prompt_tokens": self.prompt_tokens, "generation_tokens": self.generation_tokens,
            "tokens": total_tokens(self.prompt_tokens, self.generation_tokens),
            "cost_per_1m_tokens": self.cost_per_1m_tokens,
            "gpus": [{"gpu": g.gpu.name, "node": g.gpu.node, "index": g.gpu.index, "uuid": g.gpu.uuid,
                      "model_name": g.gpu.model_name, "mig_profile": g.gpu.mig_profile or None,
                      "mig_instance": g.gpu.mig_instance or None, "slice_fraction": g.slice_fraction,
                      "hours": g.hours, "utilization": g.utilization,
                      "price_usd_per_hour": g.price_usd_per_hour, "price_source": g.price_source.value,
                      "share": g.share, "shared_with": list(g.shared_with), "split_basis": g.split_basis,
                      "sharing": g.sharing.value,
                      "version_shares": {("" if v is None else v): x for v, x in g.version_shares.items()}}
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
    """Price each model's GPU units (and CPU/RAM); split shared units and versions (see the module doc)."""
    totals = {u.model: (sum(u.inferences_by_version.values()) if u.inferences_by_version is not None else None)
              for u in usages}
    # Which models select each unit, and the longest presence any of them saw (the unit's hours).
    users: dict[GpuKey, list[str]] = {}
    present: dict[GpuKey, GpuUsage] = {}
    pods: dict[GpuKey, dict[tuple[str, str], PodTime]] = {}
    pod_users: dict[tuple[GpuKey, tuple[str, str]], list[str]] = {}
    for usage in usages:
        for g in usage.gpus:
            users.setdefault(g.gpu, []).append(usage.model)
            if g.gpu not in present or g.present_minutes > present[g.gpu].present_minutes:
                present[g.gpu] = g
            for pod in g.pods or (PodTime("", "", g.present_minutes),):
                key = (pod.namespace, pod.pod)
                seen = pods.setdefault(g.gpu, {})
                if key not in seen or pod.minutes > seen[key].minutes:
                    seen[key] = pod
                pod_users.setdefault((g.gpu, key), []).append(usage.model)

    entries: list[ModelCost] = []
    for usage in usages:
        allocations = tuple(_allocate_gpu(present[g.gpu], g, usage.model, users[g.gpu], pods[g.gpu], pod_users,
                                          totals, pricing, node_prices)
                            for g in sorted(usage.gpus, key=lambda g: g.gpu))
        whole = _model_cost(usage, totals[usage.model], allocations, pricing)
        entries.append(whole)
        entries.extend(_version_costs(usage, whole))
    return CostReport(start, end, tuple(entries),
                      (*warnings, *unmatched_gpu_warnings(usages, totals), *placement_warnings(usages, entries)))


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


def placement_warnings(usages: Sequence[ModelUsage], entries: Sequence[ModelCost]) -> list[str]:
    """A warning per placed model whose pods' versions and its inference counter's versions disagree.

    Pods labelled `2.0` while the counter says `v2` would charge one version's GPUs to a
    version with no inferences and show the other as free.
    """
    out = []
    for usage in usages:
        if not usage.placement:
            continue
        placed = {v for g in usage.gpus for pod in g.pods if (v := pod.version) is not None}
        served = {v for v, n in (usage.inferences_by_version or {}).items() if n > 0}
        unserved = sorted(placed - served)
        if placed and unserved:
            out.append(f"model {usage.model!r}: pods of version(s) {', '.join(unserved)} held GPUs but the "
                       f"inference counter shows no inferences for them "
                       f"(it has: {', '.join(sorted(served)) or 'none'});"
                       f" check that the placement's version values match the counter's version label")
        elif not placed and usage.gpus:
            out.append(f"model {usage.model!r}: placement is configured but no pod on its GPUs has a known "
                       f"version; its versions are split by share of inferences")
    return out


def slice_price(gpu: GpuKey, pricing: Pricing,
                node_prices: Mapping[str, float]) -> tuple[float, float, PriceSource, str]:
    """(share of the GPU, USD per GPU-hour, price source, basis) of a GPU unit.

    A whole GPU: (1, its price). A MIG instance: its profile's share of the GPU at the
    GPU's price, or its configured instance price spread over that share (so that
    hours x share x price is the configured price x hours).
    """
    price, source = gpu_price(gpu, pricing, node_prices)
    if not (gpu.mig_profile or gpu.mig_instance):
        return 1.0, price, source, ""
    size = slice_size(gpu.model_name, gpu.mig_profile)
    if gpu.mig_profile in pricing.mig_profiles:
        configured = pricing.mig_profiles[gpu.mig_profile]
        return (size.fraction, configured / size.fraction, PriceSource.MIG_PROFILE,
                f"{size.basis}; priced ${configured}/h per instance (cost.pricing.mig_profiles)")
    return size.fraction, price, source, size.basis


def _allocate_gpu(unit: GpuUsage, mine: GpuUsage, model: str, users: list[str],
                  pods: Mapping[tuple[str, str], PodTime],
                  pod_users: Mapping[tuple[GpuKey, tuple[str, str]], list[str]],
                  totals: Mapping[str, float | None], pricing: Pricing,
                  node_prices: Mapping[str, float]) -> GpuAllocation:
    fraction, price, source, slice_basis = slice_price(unit.gpu, pricing, node_prices)
    hours = unit.present_minutes / MINUTES_PER_HOUR * fraction
    utilization = _ratio(unit.utilization_percent_sum / 100.0, unit.present_minutes)
    others = tuple(sorted(set(users) - {model}))
    weights, sharing = pod_weights(pods, unit.present_minutes)
    total_weight = sum(weights.values())
    # The model's part of each pod it selects, then of the unit.
    share = 0.0
    by_version: dict[str | None, float] = {}
    bases = []
    by_inferences = False   # a pod it selects is also another model's
    for key in sorted(weights):
        if model not in pod_users.get((unit.gpu, key), ()):
            continue
        pod_share = weights[key] / total_weight if total_weight > 0 else 1.0 / len(weights)
        model_part, basis = _model_part(model, pod_users[(unit.gpu, key)], totals)
        if basis:
            bases.append(basis)
            by_inferences = True
        part = pod_share * model_part
        share += part
        version = next((p.version for p in mine.pods if (p.namespace, p.pod) == key), None)
        by_version[version] = by_version.get(version, 0.0) + part
    version_shares = {v: x / share for v, x in by_version.items()} if share > 0 else {}
    if sharing is not Sharing.EXCLUSIVE:
        by = ("their processes' SM utilisation" if sharing is Sharing.TIME_SLICING_UTILIZATION
              else "their minutes on it")
        bases.insert(0, f"{len(weights)} pods time-slicing it, split by {by}")
    if not others:
        # Every pod on it is this model's: all of it, exactly (not a sum of fractions).
        basis = bases[0] if bases else "sole user"
        return GpuAllocation(unit.gpu, hours, utilization, price, source, 1.0, (), basis, sharing,
                             fraction, slice_basis, version_shares)
    return GpuAllocation(unit.gpu, hours, utilization, price, source, share, others,
                         "; ".join(dict.fromkeys(bases)) or "its own pods", sharing, fraction, slice_basis,
                         version_shares, by_inferences)


def pod_weights(pods: Mapping[tuple[str, str], PodTime],
                unit_minutes: float) -> tuple[dict[tuple[str, str], float], Sharing]:
    """Each pod's weight in a unit's split, and how it was decided.

    Pods one after another (their minutes add up to the unit's, give or take a lookback
    per handover) weigh their minutes. Pods at the same time (time-slicing) weigh their
    processes' SM utilisation when every pod has it, else their minutes.
    """
    minutes = {key: pod.minutes for key, pod in pods.items()}
    overlapping = len(pods) > 1 and sum(minutes.values()) > unit_minutes + HANDOVER_MINUTES * (len(pods) - 1)
    if not overlapping:
        return minutes, Sharing.EXCLUSIVE
    sm = {key: pod.sm_utilization_sum for key, pod in pods.items()}
    if all(v is not None for v in sm.values()) and sum(sm.values()) > 0:  # type: ignore[arg-type]
        return {key: float(v) for key, v in sm.items()}, Sharing.TIME_SLICING_UTILIZATION  # type: ignore[arg-type]
    return minutes, Sharing.TIME_SLICING_EVEN


def _model_part(model: str, users: list[str], totals: Mapping[str, float | None]) -> tuple[float, str]:
    """The model's part of one pod selected by `users` (one server hosting several models)."""
    if len(set(users)) == 1:
        return 1.0, ""
    # Sorted, so the floating-point sum (and every cost built on it) is the same in every process.
    served = {m: totals.get(m) or 0.0 for m in sorted(set(users))}
    total = sum(served.values())
    if total > 0:
        return served[model] / total, "share of inferences among the models on this GPU"
    return 1.0 / len(served), "split equally: no model on this GPU served inferences"


def _model_cost(usage: ModelUsage, inferences: float | None, gpus: Sequence[GpuAllocation],
                pricing: Pricing) -> ModelCost:
    gpu_hours = gpu_cost = idle_cost = utilization = None
    by_source: dict[str, float] = {}
    price_source = None
    sharing = None
    if gpus:
        gpu_hours, gpu_cost, idle_cost, utilization = _gpu_figures(gpus, lambda g: g.share)
        for g in gpus:
            by_source[g.price_source.value] = by_source.get(g.price_source.value, 0.0) + g.hours
        # The documented field has one value: the source that priced most of the GPU-hours.
        price_source = PriceSource(max(by_source, key=lambda s: by_source[s])) if by_source else None
        by_sharing: dict[Sharing, float] = {}
        for g in gpus:
            by_sharing[g.sharing] = by_sharing.get(g.sharing, 0.0) + g.hours
        sharing = max(by_sharing, key=lambda k: (by_sharing[k], k.value))
    if usage.compute:
        cpu_cost = compute_cost(usage.compute, Resource.CPU, pricing.CPU)
        ram_cost = compute_cost(usage.compute, Resource.RAM, pricing.RAM)
    else:
        cpu_cost = usage.cpu_core_hours * pricing.CPU if usage.cpu_core_hours is not None else None
        ram_cost = usage.ram_gib_hours * pricing.RAM if usage.ram_gib_hours is not None else None
    parts = [c for c in (gpu_cost, cpu_cost, ram_cost) if c is not None]
    cost = sum(parts) if parts else None
    shared = [g for g in gpus if g.shared_with or g.sharing is not Sharing.EXCLUSIVE]
    detail = "; ".join(f"{g.gpu.name}" + (f" shared with {', '.join(g.shared_with)}" if g.shared_with else "") +
                       f": {g.share:.1%} ({g.split_basis})" for g in shared)
    by_inferences = any(g.split_by_inferences for g in gpus)
    prompt, generation = _summed(usage.prompt_tokens_by_version), _summed(usage.generation_tokens_by_version)
    return ModelCost(usage.model, None, inferences, gpu_hours, utilization, cost, idle_cost,
                     cost_per_1k(cost, inferences), price_source, gpu_cost, cpu_cost, ram_cost,
                     usage.cpu_core_hours, usage.ram_gib_hours, 1.0 if inferences else None, by_source,
                     tuple(gpus), Allocation.INFERENCE_SHARE if by_inferences else Allocation.PLACEMENT,
                     detail or "sole user of its GPUs", sharing, prompt, generation,
                     cost_per_1m_tokens(cost, total_tokens(prompt, generation)))


def _summed(by_version: Mapping[str, float] | None) -> float | None:
    return sum(by_version.values()) if by_version is not None else None


def _version_tokens(usage: ModelUsage, version: str, cost: float | None) -> tuple[float | None, ...]:
    """(prompt, generation, cost per 1M tokens) of one version, by the token counters' own version
    label; none where they carry none."""
    prompt = (usage.prompt_tokens_by_version or {}).get(version)
    generation = (usage.generation_tokens_by_version or {}).get(version)
    return prompt, generation, cost_per_1m_tokens(cost, total_tokens(prompt, generation))


def _gpu_figures(gpus: Sequence[GpuAllocation], part) -> tuple[float, float, float | None, float | None]:
    """(GPU-hours, cost, idle cost, utilisation) of the parts `part(g)` of each unit."""
    gpu_hours = sum(part(g) * g.hours for g in gpus)
    gpu_cost = sum(part(g) * g.cost_usd for g in gpus)
    # Idle cost per GPU, then summed: equals GPU cost x (1 - utilisation) when the
    # GPUs have one price, and stays right when they do not.
    idle_cost = sum(part(g) * g.cost_usd * (1.0 - g.utilization) for g in gpus if g.utilization is not None)
    measured = [g for g in gpus if g.utilization is not None and g.hours > 0]
    # Weighted by the figure's GPU-hours on each GPU; by plain hours when its share is 0
    # (a model that served nothing still has a GPU whose utilisation is worth showing).
    weights = [part(g) * g.hours for g in measured]
    if sum(weights) <= 0:
        weights = [g.hours for g in measured]
    utilization = None
    if measured and sum(weights) > 0:
        utilization = sum(w * g.utilization for w, g in zip(weights, measured)) / sum(weights)  # type: ignore[operator]
    return gpu_hours, gpu_cost, idle_cost if measured else None, utilization


def _scaled(value: float | None, share: float | None) -> float | None:
    return None if value is None or share is None else value * share


def _version_costs(usage: ModelUsage, whole: ModelCost) -> list[ModelCost]:
    by_version = dict(usage.inferences_by_version or {})
    placed = usage.placement and any(v is not None for g in whole.gpus for v in g.version_shares)
    if placed:
        for g in whole.gpus:
            for v in g.version_shares:
                if v is not None:
                    by_version.setdefault(v, 0.0)
    if not any(by_version):  # only the "" key: the counter has no version label
        return []
    total = sum(by_version.values())
    out = []
    for version in sorted(by_version):
        inferences = by_version[version]
        share = inferences / total if total > 0 else None
        if placed:
            out.append(_placed_version_cost(usage, whole, version, inferences, share))
            continue
        cost = _scaled(whole.cost_usd, share)
        detail = (f"{share:.1%} of {usage.model}'s cost: versions share the model's GPUs, "
                  f"split by share of inferences" if share is not None else
                  f"not split: {usage.model} served no inferences in the window")
        out.append(ModelCost(
            # A series without the version label shows as version "" rather than merging
            # into the whole-model entry (version None).
            usage.model, version, inferences, _scaled(whole.gpu_hours, share), whole.gpu_utilization,
            cost, _scaled(whole.idle_cost_usd, share), cost_per_1k(cost, inferences), whole.price_source,
            _scaled(whole.gpu_cost_usd, share), _scaled(whole.cpu_cost_usd, share),
            _scaled(whole.ram_cost_usd, share), _scaled(whole.cpu_core_hours, share),
            _scaled(whole.ram_gib_hours, share), share, dict(whole.gpu_hours_by_price_source), (),
            Allocation.INFERENCE_SHARE, detail, whole.sharing, *_version_tokens(usage, version, cost)))
    return out


def _placed_version_cost(usage: ModelUsage, whole: ModelCost, version: str, inferences: float,
                         share: float | None) -> ModelCost:
    """A version charged the GPU time of its own pods; unplaced GPU time, CPU and RAM by share of inferences."""
    split = share or 0.0

    def part(g: GpuAllocation) -> float:
        return g.share * (g.version_shares.get(version, 0.0) + g.version_shares.get(None, 0.0) * split)

    gpus = [g for g in whole.gpus if part(g) > 0 or g.version_shares.get(version)]
    gpu_hours = gpu_cost = idle = utilization = None
    if whole.gpus:
        gpu_hours, gpu_cost, idle, utilization = _gpu_figures(whole.gpus, part)
        if gpus:
            utilization = _gpu_figures(gpus, part)[3]
    cpu_cost, ram_cost = _scaled(whole.cpu_cost_usd, share), _scaled(whole.ram_cost_usd, share)
    parts = [c for c in (gpu_cost, cpu_cost, ram_cost) if c is not None]
    cost = sum(parts) if parts else None
    unplaced = sum(g.share * g.version_shares.get(None, 0.0) * g.hours for g in whole.gpus)
    detail = f"the GPUs {version}'s own pods held ({gpu_hours or 0:.2f} GPU-hours)"
    if unplaced > 0:
        detail += (f"; {unplaced:.2f} GPU-hours on pods of no known version split by share of inferences"
                   f" ({split:.1%})")
    by_source: dict[str, float] = {}
    for g in whole.gpus:
        if part(g) > 0:
            by_source[g.price_source.value] = by_source.get(g.price_source.value, 0.0) + part(g) * g.hours
    return ModelCost(usage.model, version, inferences, gpu_hours, utilization, cost, idle,
                     cost_per_1k(cost, inferences),
                     whole.price_source, gpu_cost, cpu_cost, ram_cost, _scaled(whole.cpu_core_hours, share),
                     _scaled(whole.ram_gib_hours, share), share, by_source, (), Allocation.PLACEMENT, detail,
                     whole.sharing, *_version_tokens(usage, version, cost))


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
