"""Cost computation time against the real Prometheus, as a ratio to a client-side baseline.

Baseline ("client-side grid"): fetch each model's GPU utilisation as a 1-minute range
query and compute GPU-hours and utilisation in numpy, as a script without subqueries
would. Measured: `compute_costs` over 7 days (server-side 1m-grid subqueries, every
figure), `daily_costs` over the week (7 windows in one range query per figure) and
`cost_signals` (trailing week, week-over-week, rates, 15m utilisation).
For each: HTTP queries and the samples Prometheus read per call (`stats=all`).
Fleet figures (`fleet_figures` over the 7-day report: no queries of their own): the
figures, and their time as a share of `compute_costs`.
Placement: the canary's cost per 1k against the stable version's (1.00 when split by share
of inferences), and `compute_costs` with `placement` as a ratio to the same without it
(every model's `placement` removed): what reading kube_pod_labels and mapping pods to
versions costs.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import replace
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.config import load_config  # noqa: E402
from monitor.cost import compute_costs, cost_signals, daily_costs  # noqa: E402
from monitor.cost.fleet import fleet_figures  # noqa: E402
from monitor.cost.presets import gpu_matchers  # noqa: E402
from monitor.simulate.fleet import generate_fleet  # noqa: E402
from monitor.simulate.local_prometheus import LocalPrometheus, backfill  # noqa: E402
from monitor.simulate.writers import write_fleet  # noqa: E402
from monitor.sources.prometheus import PrometheusSource, QueryStats  # noqa: E402

END = datetime(2026, 11, 23, tzinfo=timezone.utc)
REPEATS = 5


def client_side_grid(source: PrometheusSource, config, start: datetime, end: datetime) -> dict[str, tuple]:
    """The naive way: every model's 1-minute utilisation samples fetched and reduced here, its
    workload labels read both plain and as dcgm-exporter's `exported_*` (honorLabels: false)."""
    out = {}
    for model in config.models:
        plain = gpu_matchers(model)
        exported = re.sub(r"\b(namespace|pod|container)(?=\s*(=|!=|=~|!~))", r"exported_\1", plain)
        series = [s for selector in dict.fromkeys((plain, exported))
                  for s in source.range(f"DCGM_FI_DEV_GPU_UTIL{{{selector}}}", start + timedelta(minutes=1), end,
                                        timedelta(minutes=1)).series]
        if not series:
            continue
        values = np.concatenate([s.values for s in series])
        out[model.name] = (len(values) / 60.0, float(np.nanmean(values)) / 100.0)
    return out


def timed(fn) -> float:
    runs = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def load(source: PrometheusSource, fn) -> tuple[int, int, int]:
    """(queries, samples read, most samples in one query) of one call."""
    source.stats = QueryStats()
    fn()
    return source.stats.queries, source.stats.samples, source.stats.max_query_samples


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="cost-bench-") as tmp:
        t0 = time.perf_counter()
        paths = write_fleet(generate_fleet(days=7, seed=1, end=END), Path(tmp) / "sim")
        backfill(paths["metrics"], Path(tmp) / "sim" / "blocks")
        print(f"setup: simulated and backfilled 7 days in {time.perf_counter() - t0:.1f}s")
        with LocalPrometheus(Path(tmp) / "sim" / "blocks") as prometheus:
            config = load_config(paths["config"])
            source = PrometheusSource(prometheus.url, timeout=60)
            start = END - timedelta(days=7)
            calls = {
                "compute_costs 7d": lambda: compute_costs(source, config, start, END),
                "daily_costs 7 x 1d": lambda: daily_costs(source, config, start, END),
                "cost_signals (7d + wow + rates + 15m)": lambda: cost_signals(source, config, END),
            }
            baseline_call = lambda: client_side_grid(source, config, start, END)  # noqa: E731
            baseline = timed(baseline_call)
            baseline_load = load(source, baseline_call)
            figures = {name: (timed(call), load(source, call)) for name, call in calls.items()}
            print(f"{len(config.models)} models")
            print(f"baseline client-side grid (GPU hours + utilisation only, 1m range queries): "
                  f"{baseline * 1000:.0f} ms, {baseline_load[0]} queries, {baseline_load[1]:,d} samples")
            for name, (seconds, (made, samples, most)) in figures.items():
                print(f"{name}: {seconds * 1000:.0f} ms = {seconds / baseline:.2f}x baseline; {made} queries, "
                      f"{samples:,d} samples (at most {most:,d} in one query)")
            week = compute_costs(source, config, start, END)
            fleet = fleet_figures(week)
            fleet_seconds = timed(lambda: fleet_figures(week))
            print(f"fleet: {fleet.gpus} GPUs, {fleet.gpu_hours:,.1f} GPU-hours, utilisation "
                  f"{fleet.gpu_utilization:.2%} (weighted by GPU-hours), idle cost ${fleet.idle_cost_usd:,.2f}; "
                  f"fleet_figures {fleet_seconds * 1e6:.0f} us = {fleet_seconds / figures['compute_costs 7d'][0]:.5f}x "
                  f"compute_costs 7d, 0 queries")
            unplaced = replace(config, models=[replace(m, placement=None) for m in config.models])
            unplaced_call = lambda: compute_costs(source, unplaced, start, END)  # noqa: E731
            unplaced_seconds = timed(unplaced_call)
            # Again with placement, right after, so both see the same server state and load.
            placed_seconds = timed(calls["compute_costs 7d"])
            unplaced_load, placed_load = load(source, unplaced_call), load(source, calls["compute_costs 7d"])
            v1, v2 = week.entry("chat", "v1"), week.entry("chat", "v2")
            print(f"placement: chat v2 ${v2.cost_per_1k:.4f} vs v1 ${v1.cost_per_1k:.4f} per 1k = "
                  f"{v2.cost_per_1k / v1.cost_per_1k:.2f}x ({v2.allocation.value}; by share of inferences: "
                  f"{unplaced_report(source, unplaced, start):.2f}x); compute_costs 7d with placement "
                  f"{placed_seconds * 1000:.0f} ms ({placed_load[0]} queries, {placed_load[1]:,d} samples), "
                  f"without {unplaced_seconds * 1000:.0f} ms ({unplaced_load[0]} queries, {unplaced_load[1]:,d} "
                  f"samples) = {placed_seconds / unplaced_seconds:.2f}x")
            source.close()
    return 0


def unplaced_report(source: PrometheusSource, config, start: datetime) -> float:
    report = compute_costs(source, config, start, END)
    return report.entry("chat", "v2").cost_per_1k / report.entry("chat", "v1").cost_per_1k


if __name__ == "__main__":
    sys.exit(main())
