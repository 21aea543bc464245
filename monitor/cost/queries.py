"""The PromQL behind cost figures, as pure string builders.

GPU time is measured on a one-minute grid (a subquery), not by counting samples:
counting samples would make GPU-hours depend on the scrape interval (and on how
coarsely old history was downsampled). At each grid minute a GPU is present when
its DCGM series has a sample within the lookback window (5m by default).

Subquery ranges are the window minus one millisecond: Prometheus 2.x range
selectors include both ends, so a 7d range over a 1m grid holds 10081 points; one
millisecond less keeps exactly the window's 10080 minutes on 2.x and 3.x alike.

Figures that every model reads from the same metric come as `Family` members
(`*_family`): the query engine answers all models' members with one query grouped
`by` the label that tells the models apart (monitor/sources/folding.py). Every
aggregation in a template groups through `$by(...)`, which keeps merged numbers
equal to per-model ones. The plain-string builders are each member's own query.
"""

from __future__ import annotations

from datetime import timedelta

from monitor.cost.presets import ModelMetrics
from monitor.sources.folding import Family

GPU_UTIL_METRIC = "DCGM_FI_DEV_GPU_UTIL"
# A MIG instance has no DCGM_FI_DEV_GPU_UTIL; its graphics engine activity (a 0..1 ratio,
# a profiling field) stands in for it (dcgm-exporter etc/default-counters.csv; DCGM's
# field list: GPU_UTIL is not supported on MIG devices).
MIG_UTIL_METRIC = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
# The labels that identify one physical GPU. dcgm-exporter names the host `Hostname`
# in older releases and `hostname` in newer ones; grouping by both keeps either.
GPU_ID_LABELS = ("Hostname", "hostname", "gpu", "UUID", "modelName")
# Where dcgm-exporter puts the workload: its pod, namespace and container labels
# (internal/pkg/transformation/const.go: podAttribute, namespaceAttribute, containerAttribute).
# Scraped with `honorLabels: false` (the dcgm-exporter Helm chart's serviceMonitor default)
# they collide with the target's own pod/namespace/container labels, and Prometheus keeps
# them as `exported_pod`, `exported_namespace`, `exported_container`.
WORKLOAD_LABELS = ("namespace", "pod", "container")
EXPORTED_PREFIX = "exported_"
GRID_STEP = "1m"
BYTES_PER_GIB = 2.0 ** 30


def range_duration(window: timedelta) -> str:
    """A range selector duration in whole milliseconds (exact for any window)."""
    return f"{int(round(window.total_seconds() * 1000))}ms"


def grid_range(window: timedelta) -> str:
    """The window as a subquery range holding exactly window / 1m grid points."""
    return f"{int(round(window.total_seconds() * 1000)) - 1}ms:{GRID_STEP}"


def inference_increase_family(metrics: ModelMetrics, window: timedelta) -> Family:
    """Inferences served over the window, by version when the counter has a version label."""
    return Family(f"sum$by({metrics.version_label or ''}) (increase($selector[{range_duration(window)}]))",
                  metrics.inferences)


def inference_increase(metrics: ModelMetrics, window: timedelta) -> str:
    return inference_increase_family(metrics, window).query


def inference_rate_family(metrics: ModelMetrics, window: timedelta = timedelta(minutes=5)) -> Family:
    """Inferences per second over the trailing window, by version when labelled."""
    return Family(f"sum$by({metrics.version_label or ''}) (rate($selector[{range_duration(window)}]))",
                  metrics.inferences)


def inference_rate(metrics: ModelMetrics, window: timedelta = timedelta(minutes=5)) -> str:
    return inference_rate_family(metrics, window).query


# One series per physical GPU (max over duplicates, e.g. a GPU listed under two pods, or
# scraped both with and without `exported_` labels). A `gpus` selector on the workload's
# labels also picks the series whose workload labels arrived as `exported_*`, so one
# `{namespace="llm"}` holds for both scrape styles. A GPU without DCGM_FI_DEV_GPU_UTIL
# (a MIG instance) is read from its engine activity, in percent like the rest; a GPU with
# both keeps GPU_UTIL (`or` keeps the left side's GPUs). MIG instances of one GPU count as
# that one GPU (the GPU's ids, not GPU_I_ID), shared like any GPU two models select.
_EXPORTED = ", ".join(f"{label}->{EXPORTED_PREFIX}{label}" for label in WORKLOAD_LABELS)
_BY_GPU = f"max$by({', '.join(GPU_ID_LABELS)})"
_GPU_GRID = (f"{_BY_GPU} ($series({GPU_UTIL_METRIC}; {_EXPORTED})) "
             f"or 100 * {_BY_GPU} ($series({MIG_UTIL_METRIC}; {_EXPORTED}))")


def _gpu_selector(gpu_matchers: str) -> str:
    return f"{GPU_UTIL_METRIC}{{{gpu_matchers}}}"


def gpu_utilization_grid_family(gpu_matchers: str) -> Family:
    """Per GPU: its utilisation (percent), one series per physical GPU."""
    return Family(_GPU_GRID, _gpu_selector(gpu_matchers))


def gpu_utilization_grid(gpu_matchers: str) -> str:
    return gpu_utilization_grid_family(gpu_matchers).query


def gpu_present_minutes_family(gpu_matchers: str, window: timedelta) -> Family:
    """Per GPU: grid minutes in the window at which its DCGM series existed."""
    return Family(f"count_over_time(({_GPU_GRID})[{grid_range(window)}])", _gpu_selector(gpu_matchers))


def gpu_present_minutes(gpu_matchers: str, window: timedelta) -> str:
    return gpu_present_minutes_family(gpu_matchers, window).query


def gpu_utilization_percent_sum_family(gpu_matchers: str, window: timedelta) -> Family:
    """Per GPU: the sum of its utilisation (percent) over those grid minutes."""
    return Family(f"sum_over_time(({_GPU_GRID})[{grid_range(window)}])", _gpu_selector(gpu_matchers))


def gpu_utilization_percent_sum(gpu_matchers: str, window: timedelta) -> str:
    return gpu_utilization_percent_sum_family(gpu_matchers, window).query


# GPU units and the pods on them: what cost and placement read.
#
# A unit is a GPU or one MIG instance (GPU_I_PROFILE/GPU_I_ID). Its hours are the grid
# minutes at which any series of it existed (one aggregation per grid minute: the only
# figure that needs one, since pods on one unit may overlap). Everything else is a
# range function over each raw series (`$over`), grouped after it: far cheaper than
# aggregating at every grid minute, and equal to it, because the series of one
# (unit, pod) are the same reading scraped once or twice (plain and `exported_*`),
# deduplicated by `max`. The workload's `exported_pod`/`exported_namespace`, when the
# scrape renamed them, are copied back onto `pod`/`namespace`.
UNIT_LABELS = (*GPU_ID_LABELS, "GPU_I_PROFILE", "GPU_I_ID")
GPU_METRICS = (GPU_UTIL_METRIC, MIG_UTIL_METRIC)
PROCESS_SM_METRIC = "monitor_gpu_process_sm_utilization_ratio"
_UNIT = ", ".join(UNIT_LABELS)


def _unit_selector(gpu_matchers: str) -> str:
    return f'{{__name__=~"{"|".join(GPU_METRICS)}",{gpu_matchers}}}'


def gpu_unit_minutes_family(gpu_matchers: str, window: timedelta) -> Family:
    """Per GPU unit: grid minutes in the window at which any of its utilisation series existed."""
    return Family(f"count_over_time((count$by({_UNIT}) ($series(; {_EXPORTED})))[{grid_range(window)}])",
                  _unit_selector(gpu_matchers))


def _workload_copied(expression: str) -> str:
    for label in ("pod", "namespace"):
        expression = f'label_replace({expression}, "{label}", "$1", "{EXPORTED_PREFIX}{label}", "(.+)")'
    return expression


def gpu_pod_family(function: str, metric: str, gpu_matchers: str, window: timedelta, combine: str = "max") -> Family:
    """Per (GPU unit, namespace, pod): `function` (count_over_time or sum_over_time) of `metric` over
    the window's grid, each raw series on its own; `combine` merges series of one (unit, pod)."""
    inner = f"$over({function}; {grid_range(window)}; ; {_EXPORTED})"
    return Family(f"{combine}$by({_UNIT}, namespace, pod) ({_workload_copied(inner)})",
                  f"{metric}{{{gpu_matchers}}}")


def kube_pod_versions(label: str, window: timedelta) -> str:
    """Pods seen in the window with a value of kube-state-metrics' `label` on kube_pod_labels."""
    return (f"max by (namespace, pod, exported_namespace, exported_pod, {label}) "
            f'(max_over_time(kube_pod_labels{{{label}!=""}}[{range_duration(window)}]))')


def node_gpu_hourly_cost(window: timedelta) -> str:
    """OpenCost's GPU price per node, averaged over the window."""
    return f"avg by (node) (avg_over_time(node_gpu_hourly_cost[{range_duration(window)}]))"


def grid_minute_sum(expression: str, window: timedelta) -> str:
    """Sum of an expression's value over the window's grid minutes (value x minutes)."""
    return f"sum(sum_over_time(({expression})[{grid_range(window)}]))"
