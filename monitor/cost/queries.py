"""The PromQL behind cost figures, as pure string builders.

GPU time is measured on a one-minute grid (a subquery), not by counting samples:
counting samples would make GPU-hours depend on the scrape interval (and on how
coarsely old history was downsampled). At each grid minute a GPU is present when
its DCGM series has a sample within the lookback window (5m by default).

Subquery ranges are the window minus one millisecond: Prometheus 2.x range
selectors include both ends, so a 7d range over a 1m grid holds 10081 points; one
millisecond less keeps exactly the window's 10080 minutes on 2.x and 3.x alike.
"""

from __future__ import annotations

from datetime import timedelta

from monitor.cost.presets import ModelMetrics

GPU_UTIL_METRIC = "DCGM_FI_DEV_GPU_UTIL"
# The labels that identify one physical GPU. dcgm-exporter names the host `Hostname`
# in older releases and `hostname` in newer ones; grouping by both keeps either.
GPU_ID_LABELS = ("Hostname", "hostname", "gpu", "UUID", "modelName")
GRID_STEP = "1m"
BYTES_PER_GIB = 2.0 ** 30


def range_duration(window: timedelta) -> str:
    """A range selector duration in whole milliseconds (exact for any window)."""
    return f"{int(round(window.total_seconds() * 1000))}ms"


def grid_range(window: timedelta) -> str:
    """The window as a subquery range holding exactly window / 1m grid points."""
    return f"{int(round(window.total_seconds() * 1000)) - 1}ms:{GRID_STEP}"


def inference_increase(metrics: ModelMetrics, window: timedelta) -> str:
    """Inferences served over the window, by version when the counter has a version label."""
    by = f" by ({metrics.version_label})" if metrics.version_label else ""
    return f"sum{by} (increase({metrics.inferences}[{range_duration(window)}]))"


def inference_rate(metrics: ModelMetrics, window: timedelta = timedelta(minutes=5)) -> str:
    """Inferences per second over the trailing window, by version when labelled."""
    by = f" by ({metrics.version_label})" if metrics.version_label else ""
    return f"sum{by} (rate({metrics.inferences}[{range_duration(window)}]))"


def _gpu_grid(gpu_matchers: str) -> str:
    # One series per physical GPU (max over duplicates, e.g. a GPU listed under two pods).
    return f"max by ({', '.join(GPU_ID_LABELS)}) ({GPU_UTIL_METRIC}{{{gpu_matchers}}})"


def gpu_utilization_grid(gpu_matchers: str) -> str:
    """Per GPU: its utilisation (percent), one series per physical GPU."""
    return _gpu_grid(gpu_matchers)


def gpu_present_minutes(gpu_matchers: str, window: timedelta) -> str:
    """Per GPU: grid minutes in the window at which its DCGM series existed."""
    return f"count_over_time(({_gpu_grid(gpu_matchers)})[{grid_range(window)}])"


def gpu_utilization_percent_sum(gpu_matchers: str, window: timedelta) -> str:
    """Per GPU: the sum of its utilisation (percent) over those grid minutes."""
    return f"sum_over_time(({_gpu_grid(gpu_matchers)})[{grid_range(window)}])"


def node_gpu_hourly_cost(window: timedelta) -> str:
    """OpenCost's GPU price per node, averaged over the window."""
    return f"avg by (node) (avg_over_time(node_gpu_hourly_cost[{range_duration(window)}]))"


def cpu_cores_expression(cpu: str) -> str:
    """Cores in use: a `{matchers}` set means cAdvisor's CPU counter; anything else is a cores expression."""
    if cpu.strip().startswith("{"):
        return f"sum(rate(container_cpu_usage_seconds_total{cpu.strip()}[5m]))"
    return cpu


def memory_bytes_expression(memory: str) -> str:
    """Bytes in use: a `{matchers}` set means cAdvisor's working set; anything else is a bytes expression."""
    if memory.strip().startswith("{"):
        return f"sum(container_memory_working_set_bytes{memory.strip()})"
    return memory


def grid_minute_sum(expression: str, window: timedelta) -> str:
    """Sum of an expression's value over the window's grid minutes (value x minutes)."""
    return f"sum(sum_over_time(({expression})[{grid_range(window)}]))"
