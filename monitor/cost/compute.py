"""CPU and RAM: what a model's pods used (cAdvisor) or reserved (kube-state-metrics), and its price.

`models[].cpu` / `memory` given as `{matchers}` select the model's containers:
- `resource_source: usage` (the default) reads cAdvisor, as the kubelet exports it:
  `container_cpu_usage_seconds_total` (cumulative core-seconds) and
  `container_memory_working_set_bytes` (what the OOM killer counts), labelled
  namespace, pod, container, image, name, id. The kubelet also exports each pod's own
  cgroup (`container=""`, the sum of its containers) and the pause container
  (`container="POD"`); both are left out, as kube-prometheus's recording rules do, or
  the pod would count twice. cAdvisor's series carry no node: the node comes from
  kube-state-metrics' `kube_pod_info{namespace,pod,node}` (kube-prometheus's join);
  containers of pods it does not list are still counted, at the config's price.
- `resource_source: requests` reads kube-state-metrics'
  `kube_pod_container_resource_requests{resource="cpu",unit="core"}` and
  `{resource="memory",unit="byte"}`, which carry the node themselves: what the pods
  reserved, used or not (what a node's capacity is sold by).
Any other text is a PromQL expression of its own, in cores or bytes (no node).

CPU-hours are exact integrals of the usage counter (`increase()` over the window);
memory and requests are gauges, summed over the one-minute grid like GPU presence
(monitor.cost.queries). Each is measured per node, and priced per node with OpenCost's
`node_cpu_hourly_cost` (USD per core-hour) and `node_ram_hourly_cost` (USD per
GiB-hour) where OpenCost exports them (labels node, instance, instance_type, region,
provider_id; joined by `node`), else with `cost.pricing.CPU` / `RAM` (OpenCost's
custom pricing keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Iterable

from monitor.config import ModelConfig
from monitor.cost.queries import BYTES_PER_GIB, grid_minute_sum, grid_range, range_duration

SECONDS_PER_HOUR = 3600.0
MINUTES_PER_HOUR = 60.0
# cAdvisor's pod-level cgroup (container="") and pause container (container="POD").
_CONTAINERS_ONLY = 'container!="",container!="POD"'


class Resource(Enum):
    CPU = "cpu"   # amounts in core-hours
    RAM = "ram"   # amounts in GiB-hours


@dataclass(frozen=True)
class ComputeUsage:
    """A model's CPU or RAM on one node over a window, and the part OpenCost priced."""

    resource: Resource
    node: str                   # "" when the node is unknown
    hours: float                # core-hours (CPU) or GiB-hours (RAM)
    priced_hours: float = 0.0   # the part priced by OpenCost's node price
    priced_cost_usd: float = 0.0


@dataclass(frozen=True)
class ComputeFigure:
    """One resource's query for one model, and how to turn its value into hours."""

    resource: Resource
    query: str
    hours_per_unit: float
    price_query: str | None     # OpenCost's per-node price, when the figure is per node


def node_price_query(resource: Resource, window: timedelta) -> str:
    """OpenCost's CPU or RAM price per node, averaged over the window."""
    metric = "node_cpu_hourly_cost" if resource is Resource.CPU else "node_ram_hourly_cost"
    return f"avg by (node) (avg_over_time({metric}[{range_duration(window)}]))"


def _is_selector(value: str) -> bool:
    return value.strip().startswith("{")


def _matchers(value: str) -> str:
    return value.strip()[1:-1].strip()


def _with(metric: str, *matchers: str) -> str:
    return f"{metric}{{{','.join(m for m in matchers if m)}}}"


def _pod_node(window: timedelta | None) -> str:
    """One node per (namespace, pod) from kube_pod_info: the one it ran on in the window."""
    info = 'kube_pod_info{node!=""}'
    if window is not None:
        info = f"max_over_time({info}[{range_duration(window)}])"
    return f"topk by (namespace, pod) (1, max by (namespace, pod, node) ({info}))"


def _on_node(expression: str, window: timedelta | None) -> str:
    """Each series of `expression` with its pod's node; series of pods kube_pod_info lacks keep no node."""
    return (f"(({expression}) * on (namespace, pod) group_left (node) {_pod_node(window)}) "
            f"or on (namespace, pod) ({expression})")


def compute_figures(model: ModelConfig, window: timedelta) -> list[ComputeFigure]:
    """The model's CPU and RAM queries over one window, each answering one series per node."""
    figures = []
    for resource, value in ((Resource.CPU, model.cpu), (Resource.RAM, model.memory)):
        if not value:
            continue
        scale = 1.0 if resource is Resource.CPU else 1.0 / BYTES_PER_GIB
        price = node_price_query(resource, window)
        if not _is_selector(value):
            figures.append(ComputeFigure(resource, grid_minute_sum(value, window), scale / MINUTES_PER_HOUR, None))
        elif model.resource_source == "requests":
            selector = _with("kube_pod_container_resource_requests", _matchers(value),
                             'resource="cpu",unit="core"' if resource is Resource.CPU
                             else 'resource="memory",unit="byte"')
            query = f"sum by (node) (sum_over_time((sum by (node) ({selector}))[{grid_range(window)}]))"
            figures.append(ComputeFigure(resource, query, scale / MINUTES_PER_HOUR, price))
        elif resource is Resource.CPU:
            counter = _with("container_cpu_usage_seconds_total", _matchers(value), _CONTAINERS_ONLY)
            used = f"increase({counter}[{range_duration(window)}])"
            query = f"sum by (node) ({_on_node(used, window)})"
            figures.append(ComputeFigure(resource, query, 1.0 / SECONDS_PER_HOUR, price))
        else:
            gauge = _with("container_memory_working_set_bytes", _matchers(value), _CONTAINERS_ONLY)
            query = f"sum by (node) (sum_over_time(({_on_node(gauge, None)})[{grid_range(window)}]))"
            figures.append(ComputeFigure(resource, query, scale / MINUTES_PER_HOUR, price))
    return figures


def priced(resource: Resource, node: str, hours: float, node_prices: dict[str, float]) -> ComputeUsage:
    """One node's usage, priced by OpenCost when it has a price for the node."""
    if node in node_prices:
        return ComputeUsage(resource, node, hours, hours, hours * node_prices[node])
    return ComputeUsage(resource, node, hours)


def compute_hours(usages: Iterable[ComputeUsage], resource: Resource) -> float | None:
    """Core-hours or GiB-hours over every node; None when nothing was measured."""
    rows = [u for u in usages if u.resource is resource]
    return sum(u.hours for u in rows) if rows else None


def compute_cost(usages: Iterable[ComputeUsage], resource: Resource, config_price: float) -> float | None:
    """USD: OpenCost's node prices where they exist, the config's price for the rest; None without data."""
    rows = [u for u in usages if u.resource is resource]
    if not rows:
        return None
    return sum(u.priced_cost_usd + (u.hours - u.priced_hours) * config_price for u in rows)
