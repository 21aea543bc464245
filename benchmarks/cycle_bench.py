"""One full daemon cycle over 1,000 SLOs and 100 models, against a local Prometheus.

A cycle is `monitor.pipeline.run_cycle`: SLOs, drift and cost from Prometheus, the
default rules, the alert state and the queued notifications in the SQLite state
file. Measured in one process, on one server:
- naive (the baseline): one query per SLO per window, `(errors)/(total)`, then per
  model one query per figure the cycle computes, one after another, as a simple
  script would. It only makes the queries (no burn rates, rules, state or
  notifications), so the ratios understate the cycle's advantage. It runs on a
  sample of the SLOs and models (--naive-slos, --naive-models), scaled up.
- direct:   `slo_evaluation: direct`, the SLIs queried. The first cycle (at T) is
  cold: a new state file, drift profiles fitted from the prediction logs, numba
  kernels loaded. The second (at T+1m) is the steady state.
- recorded: `slo_evaluation: recorded`, reading the series `monitor slo rules`
  records, one cycle at T+1m from a copy of the state the direct cycle at T left,
  so both warm cycles take the same step from the same state.
For each: wall time (and its split: the SLO, drift and cost producers, which run side
by side, each with its own time, queries and samples; then the rules, alert state and
notifications), HTTP queries and the samples Prometheus read for them
(`PrometheusSource.stats`, from `stats=all`'s totalQueryableSamples), the web UI's
snapshot saved after the cycle (as the daemon does, outside the cycle's time),
RSS now (/proc/self/statm) and peak RSS so far (VmHWM: it only grows, so it is
read after each phase; the naive loop runs first to get its own peak). Each figure
is also printed as a ratio to the naive loop's.

The cycles are incremental: the cold cycle (a new state file) backfills the closed
hours the weekly cost needs and asks the drift reference windows; the warm cycles
reuse them (monitor.cost.hourly, monitor.incremental.answers).

The fleet: the simulated fleet's history (the test suite's cached blocks when
present, else simulated and backfilled in a child process so its arrays do not
count here). 1,000 Sloth SLOs over the six services' request counters and latency
histograms, and the six models replicated to 100 (ranker's replicas keep its
Parquet prediction log); every SLO and model carries an extra `bench_id!="<n>"`
matcher, which every series satisfies, so each selects the fleet's real series but
no two share a query and Prometheus answers all of them.

The recorded series are written from the direct cycle's SLO results at T+1m and
backfilled with promtool (Prometheus only evaluates rules at wall-clock now;
tests/test_slo_rules.py shows the rule file records exactly these values).

As in the daemon, the rules and SLO specs are loaded once per config
(`load_definitions`), not every cycle; the SLO producer below is the pipeline's
`evaluate_slo_signals` on those specs (the config's mode and `slo_min_events`),
timed and keeping its results for the recorded series. Drift and cost are the
pipeline's own.

Memory over 500 cycles: the 1,000-SLO, 100-model config in recorded mode, from the
state the recorded warm cycle left, stepping a minute per cycle (so hours close,
the weekly cost is rebuilt from them and the drift reference windows move). The
recorded series are backfilled over those minutes too (every 5 minutes, which the
5-minute lookback spreads over each minute). RSS is printed every 50 cycles with the
growth per 100, and the cycle times and queries.

Run: .venv/bin/python benchmarks/cycle_bench.py
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import monitor.commands.run  # noqa: E402,F401  the daemon command's process settings (arrow's allocator)
from fleet_history import FLEET_END, bench_sli, naive_slo_loop, prepare_history, write_recorded_series  # noqa: E402
from monitor.config import Config, load_config  # noqa: E402
from monitor.cost import queries as cost_queries  # noqa: E402
from monitor.cost.presets import gpu_matchers, resolve_model_metrics  # noqa: E402
from monitor.durations import format_duration  # noqa: E402
from monitor.pipeline import (  # noqa: E402
    Definitions,
    SignalProducer,
    cost_producer,
    drift_producer,
    load_definitions,
    run_cycle,
    save_ui_snapshot,
)
from monitor.process_memory import limit_malloc_arenas, release_freed_memory  # noqa: E402
from monitor.signals import Signal  # noqa: E402
from monitor.simulate.local_prometheus import LocalPrometheus, backfill  # noqa: E402
from monitor.slo import EvaluationMode, SloResult, evaluate_slos, load_slo_specs, slo_signals  # noqa: E402
from monitor.slo.spec import SloSpec  # noqa: E402
from monitor.sources.prometheus import PrometheusSource, QueryStats, escape_label_value  # noqa: E402
from monitor.store import StateStore  # noqa: E402

OBJECTIVES_PERCENT = (99.0, 99.5, 99.9, 99.95)
# Ten hours before the fleet's end: fraud-detector's slow burn is under way, the
# user-features pipeline is stale and search-embedder's latency regression starts.
CYCLE_AT = FLEET_END - timedelta(hours=10)
RSS_EVERY_CYCLES = 25
# RSS is flat over the memory check when its least-squares slope from cycle 100 on is at
# most this: 1 MiB per 100 cycles is 14 MiB a day at one cycle a minute, which a leak of
# one retained answer per cycle (the recorded SLO answer alone is several MiB) exceeds.
FLAT_KIB_PER_100_CYCLES = 1024
PAGE_SIZE_KIB = resource.getpagesize() // 1024


def rss_kib() -> int:
    """The process's resident set size now (/proc/self/statm), in KiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE_KIB


def peak_rss_kib() -> int:
    """The process's peak resident set size so far (VmHWM in /proc/self/status, KiB).

    Not getrusage's ru_maxrss: Linux carries that over fork and exec, so a process the
    pool spawns would report its parent's peak (the cold cycle's) as its own.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


# -- the benchmark fleet's configs -------------------------------------------------

def write_bench_slos(directory: Path, count: int) -> None:
    """`count` Sloth SLOs (fleet_history.bench_sli), one file per service."""
    from monitor.simulate.fleet import FLEET  # the simulator stays out of the measured child process

    directory.mkdir(parents=True, exist_ok=True)
    by_service: dict[str, list[dict]] = {}
    for n in range(count):
        name, sli = bench_sli(n)
        by_service.setdefault(FLEET[n % len(FLEET)].name, []).append({
            "name": name, "objective": OBJECTIVES_PERCENT[n % len(OBJECTIVES_PERCENT)],
            "sli": {"events": {"error_query": sli.error_query, "total_query": sli.total_query}},
            "alerting": {"page_alert": {"labels": {"severity": "page"}},
                         "ticket_alert": {"labels": {"severity": "ticket"}}}})
    for service, slos in by_service.items():
        doc = {"version": "prometheus/v1", "service": service, "slos": slos}
        (directory / f"{service}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def bench_models(fleet_models: list[dict], count: int) -> list[dict]:
    """The six Triton models of the fleet (FLEET: GPUs, prediction histograms and logs) replicated to
    `count`, each under its own name and `bench_id` matcher. The fleet's later models (presets,
    placement, MIG, CPU-only) are left out so the figures stay comparable across runs."""
    from monitor.simulate.fleet import FLEET

    names = {spec.name for spec in FLEET}
    replicated = [model for model in fleet_models if model["name"] in names]
    models = []
    for n in range(count):
        original = replicated[n % len(replicated)]
        spec = next(m for m in FLEET if m.name == original["name"])
        distinct = f'bench_id!="{n}"'
        by_model = f'model="{escape_label_value(spec.name)}",{distinct}'
        models.append({"name": f"{spec.name}-{n:03d}",
                       "inferences": f"nv_inference_count{{{by_model}}}", "version_label": "version",
                       "gpus": f'{{namespace="{escape_label_value(spec.gpu_namespace)}",{distinct}}}',
                       "predictions": f"model_prediction_score_bucket{{{by_model}}}",
                       "drift": dict(original["drift"])})
    return models


def write_configs(sim_dir: Path, out: Path, url: str, slo_count: int, model_count: int) -> dict[str, Path]:
    """monitor.yaml files: the benchmark fleet in direct and recorded mode."""
    from monitor.simulate.writers import fleet_config

    out.mkdir(parents=True, exist_ok=True)
    write_bench_slos(out / "slos", slo_count)
    shutil.copytree(sim_dir / "rules", out / "rules")
    shutil.copytree(sim_dir / "predictions", out / "predictions")
    fleet = fleet_config(url)
    paths = {}
    for mode in ("direct", "recorded"):
        config = {**fleet, "state": {"path": f"state-{mode}.db"}, "slo_evaluation": mode,
                  "models": bench_models(fleet["models"], model_count)}
        paths[mode] = out / f"monitor-{mode}.yaml"
        paths[mode].write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return paths


# -- cycles --------------------------------------------------------------------------

@dataclass
class StageTimes:
    """Seconds and queries per producer, accumulated over the cycles they ran in."""

    definitions: Definitions
    seconds: dict[str, float] = field(default_factory=dict)
    queries: dict[str, int] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    rss_after: dict[str, int] = field(default_factory=dict)
    peak_after: dict[str, int] = field(default_factory=dict)  # the process's peak RSS so far, after each
    slo_results: list[SloResult] = field(default_factory=list)
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)  # perf_counter start, end

    def producers_seconds(self) -> float:
        """From the first producer's start to the last one's end (they run side by side)."""
        return max(end for _, end in self.spans.values()) - min(start for start, _ in self.spans.values())

    def timed(self, name: str, produce: SignalProducer) -> SignalProducer:
        def run(source: PrometheusSource, config: Config, at: datetime, store: StateStore) -> list[Signal]:
            # The producers run side by side: each one's own queries are tallied apart.
            started = time.perf_counter()
            with QueryStats.tally() as share:
                try:
                    return produce(source, config, at, store)
                finally:
                    self.spans[name] = (started, time.perf_counter())
                    self.seconds[name] = self.spans[name][1] - started
                    self.queries[name] = share.queries
                    self.samples[name] = share.samples
                    self.rss_after[name] = rss_kib()
                    self.peak_after[name] = peak_rss_kib()
        return run

    def slo_producer_for_mode(self, source: PrometheusSource, config: Config, at: datetime,
                              store: StateStore) -> list[Signal]:
        """The pipeline's SLO evaluation of the loaded specs (config's mode and min events); keeps the results."""
        specs = list(self.definitions.slo_specs)
        self.slo_results = evaluate_slos(source, specs, at, mode=EvaluationMode(config.slo_evaluation),
                                         min_events=config.slo_min_events, store=store)
        return slo_signals(self.slo_results) if specs else []

    def producers(self) -> tuple[SignalProducer, ...]:
        return (self.timed("SLO", self.slo_producer_for_mode), self.timed("drift", drift_producer),
                self.timed("cost", cost_producer))


@dataclass
class Cycle:
    """What one measured cycle did (plain values: it crosses from the child process)."""

    at: datetime
    seconds: float
    queries: int
    signals: int
    firing: int
    notifications: int
    stage_seconds: dict[str, float]
    producers_seconds: float  # the producers side by side, first start to last end
    snapshot_seconds: float  # after the cycle: the web UI's snapshot (pipeline.save_ui_snapshot)
    stage_queries: dict[str, int]
    stage_samples: dict[str, int]
    stage_rss_kib: dict[str, int]
    stage_peak_kib: dict[str, int]
    rss_kib: int
    peak_rss_kib: int
    samples: int
    max_query_samples: int


def one_cycle(config: Config, store: StateStore, source: PrometheusSource, at: datetime
              ) -> tuple[Cycle, list[SloResult]]:
    """One timed cycle, and its SLO results."""
    stages = StageTimes(load_definitions(config))  # the daemon's load at start, outside the timing
    read = source.stats.samples
    started = time.perf_counter()
    report = run_cycle(config, store, source, at, definitions=stages.definitions, producers=stages.producers())
    seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(f"the cycle at {at:%H:%M} failed: {report.error}")
    started = time.perf_counter()
    save_ui_snapshot(store, report)  # as the daemon does once the cycle's outcome is written
    snapshot_seconds = time.perf_counter() - started
    release_freed_memory()  # and then
    firing = sum(alert.state.value == "firing" for alert in report.alerts.values())
    return Cycle(at, seconds, report.queries, len(report.signals), firing, len(report.notifications),
                 dict(stages.seconds), stages.producers_seconds(), snapshot_seconds, dict(stages.queries),
                 dict(stages.samples), dict(stages.rss_after), dict(stages.peak_after), rss_kib(), peak_rss_kib(),
                 source.stats.samples - read, source.stats.max_query_samples), stages.slo_results


def copy_state(source_path: Path, target_path: Path) -> None:
    """Copy a closed state file (WAL checkpointed on close)."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source_path}{suffix}").exists():
            shutil.copyfile(f"{source_path}{suffix}", f"{target_path}{suffix}")


# -- the baseline --------------------------------------------------------------------

def naive_model_loop(source: PrometheusSource, config: Config, at: datetime) -> int:
    """Per model, one instant query per figure the cycle computes, sequentially.

    The GPU price per node at both week ends once; then per model this week's and last
    week's inferences, GPU-minutes and utilisation sums (cost per 1k week over week),
    the 5m inference rate, the last 15 minutes' GPU-minutes and utilisation sum, and
    the prediction histogram over the reference, current and early windows.
    """
    week, recent = timedelta(days=7), timedelta(minutes=15)
    made = 0
    for end in (at, at - week):
        source.instant(cost_queries.node_gpu_hourly_cost(week), end)
        made += 1
    for model in config.models:
        metrics, matchers = resolve_model_metrics(model), gpu_matchers(model)
        figures = []
        for end in (at, at - week):
            figures += [(cost_queries.inference_increase(metrics, week), end),
                        (cost_queries.gpu_present_minutes(matchers, week), end),
                        (cost_queries.gpu_utilization_percent_sum(matchers, week), end)]
        figures += [(cost_queries.inference_rate(metrics), at),
                    (cost_queries.gpu_present_minutes(matchers, recent), at),
                    (cost_queries.gpu_utilization_percent_sum(matchers, recent), at)]
        by = f"sum by ({model.version_label}, le)"
        drift = model.drift
        for window, end in ((drift.reference, at - drift.current), (drift.current, at),
                            (drift.current, at - drift.reference)):
            figures.append((f"{by} (increase({model.predictions}[{format_duration(window)}]))", end))
        for query, end in figures:
            source.instant(query, end)
            made += 1
    return made


@dataclass
class Naive:
    seconds: float
    queries: int
    slo_seconds: float
    slo_queries: int
    model_seconds: float
    model_queries: int
    slo_sample: int
    model_sample: int
    peak_rss_kib: int
    samples: int


def run_naive(config: Config, specs: list[SloSpec], at: datetime, slo_sample: int, model_sample: int) -> Naive:
    """The baseline on samples of the SLOs and models, scaled to all of them."""
    sampled = replace(config, models=config.models[:model_sample])
    with PrometheusSource.from_config(config.prometheus) as source:
        started = time.perf_counter()
        slo_queries = naive_slo_loop(source, specs[:slo_sample], at)
        slo_seconds = time.perf_counter() - started
        slo_samples = source.stats.samples
        started = time.perf_counter()
        model_queries = naive_model_loop(source, sampled, at)
        model_seconds = time.perf_counter() - started
        model_samples = source.stats.samples - slo_samples
    slo_scale, model_scale = len(specs) / slo_sample, len(config.models) / model_sample
    slo_seconds, slo_queries = slo_seconds * slo_scale, round(slo_queries * slo_scale)
    model_seconds, model_queries = model_seconds * model_scale, round(model_queries * model_scale)
    return Naive(slo_seconds + model_seconds, slo_queries + model_queries, slo_seconds, slo_queries,
                 model_seconds, model_queries, slo_sample, model_sample, peak_rss_kib(),
                 round(slo_samples * slo_scale + model_samples * model_scale))


# -- the 500-cycle memory check ------------------------------------------------------

@dataclass
class LeakCheck:
    model_count: int
    slo_count: int
    rss_before_kib: int     # the process's RSS after its imports and config load, before any cycle
    peak_rss_kib: int
    rss_by_cycle: dict[int, int]
    seconds: float
    transitions: int
    notifications: int
    cycle_seconds: list[float]
    cycle_queries: list[int]
    peak_growth: list[tuple[int, int, int]]  # (cycle, peak KiB after it, its queries) where the peak grew


def recorded_phase(config_path: str, warm_at: datetime, leak_from: datetime, cycles: int
                   ) -> tuple[Cycle, LeakCheck]:
    """In a fresh process: a warm-up cycle, the warm recorded cycle, then `cycles` more a minute apart
    on the same state."""
    limit_malloc_arenas()  # as `monitor run` does first
    config = load_config(config_path)
    rss_before = rss_kib()
    state = config.resolve_path(config.state.path)
    warm_up = Path(f"{state}.warm-up")
    copy_state(Path(state), warm_up)
    with PrometheusSource.from_config(config.prometheus) as source:
        # The process's first cycle loads the compiled drift kernels and the cached
        # profiles: a warm-up on a copy of the state, then the measured cycle on the state.
        with StateStore(warm_up) as store:
            one_cycle(config, store, source, warm_at)
        print(f"  (warm-up cycle on a copy of the state: peak RSS so far {mib(peak_rss_kib())})", flush=True)
        with StateStore(state) as store:
            recorded, _ = one_cycle(config, store, source, warm_at)
    print(f"  (recorded cycle: {recorded.seconds:.2f}s, {recorded.queries} queries, "
          f"{ {k: round(v, 2) for k, v in recorded.stage_seconds.items()} }, peak RSS {mib(recorded.peak_rss_kib)})",
          flush=True)
    return recorded, leak_check(config, leak_from, cycles, rss_before)


def leak_check(config: Config, start: datetime, cycles: int, rss_before: int) -> LeakCheck:
    """`cycles` cycles a minute apart on one state file and source, RSS every RSS_EVERY_CYCLES."""
    store = StateStore(config.resolve_path(config.state.path))
    source = PrometheusSource.from_config(config.prometheus)
    rss_by_cycle = {0: rss_kib()}
    transitions = notifications = 0
    definitions = load_definitions(config)
    cycle_seconds: list[float] = []
    cycle_queries: list[int] = []
    peak_growth: list[tuple[int, int, int]] = []
    peak_before = peak_rss_kib()  # the warm-up and recorded cycles' peak
    started = time.perf_counter()
    try:
        for index in range(1, cycles + 1):
            cycle_started = time.perf_counter()
            report = run_cycle(config, store, source, start + timedelta(minutes=index - 1), definitions=definitions)
            cycle_seconds.append(time.perf_counter() - cycle_started)
            save_ui_snapshot(store, report)  # what the daemon does after each cycle
            release_freed_memory()
            cycle_queries.append(report.queries)
            if not report.ok:
                raise SystemExit(f"leak check cycle {index} failed: {report.error}")
            peak = peak_rss_kib()
            if peak > (peak_growth[-1][1] if peak_growth else peak_before):
                peak_growth.append((index, peak, report.queries))
            transitions += len(report.transitions)
            notifications += len(report.notifications)
            if index % RSS_EVERY_CYCLES == 0 or index in (1, cycles):
                rss_by_cycle[index] = rss_kib()
                print(f"  (memory check: {index} cycles, last {cycle_seconds[-1]:.2f}s, RSS {mib(rss_by_cycle[index])})",
                      flush=True)
    finally:
        source.close()
        store.close()
    return LeakCheck(len(config.models), len(definitions.slo_specs), rss_before, peak_rss_kib(), rss_by_cycle,
                     time.perf_counter() - started, transitions, notifications, cycle_seconds, cycle_queries,
                     peak_growth)


# -- main ----------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--naive-slos", type=int, default=50, help="SLOs the naive loop runs (scaled up)")
    parser.add_argument("--naive-models", type=int, default=25, help="models the naive loop runs (scaled up)")
    parser.add_argument("--leak-cycles", type=int, default=500)
    args = parser.parse_args()
    limit_malloc_arenas()  # the daemon's process setting (`monitor run`), for every phase here

    with tempfile.TemporaryDirectory(prefix="cycle-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # Simulating the fleet (when the test cache is cold) takes GiBs of numpy
        # arrays: a child process keeps them out of this one's peak RSS.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            history = pool.submit(prepare_history, tmp).result()
        print(f"history: {history.origin} in {history.seconds:.1f}s")
        server = LocalPrometheus(history.data_dir, log_path=tmp / "prometheus.log").start()
        try:
            measure(args, tmp, history.sim_dir, server)
        finally:
            server.stop()
    return 0


def measure(args: argparse.Namespace, tmp: Path, sim_dir: Path, server: LocalPrometheus) -> None:
    paths = write_configs(sim_dir, tmp / "bench", server.url, args.slos, args.models)
    direct_config, recorded_config = load_config(paths["direct"]), load_config(paths["recorded"])
    specs = load_slo_specs(direct_config)
    cold_at, warm_at = CYCLE_AT, CYCLE_AT + timedelta(minutes=1)
    rss_start, peak_start = rss_kib(), peak_rss_kib()

    naive = run_naive(direct_config, specs, cold_at, args.naive_slos, args.naive_models)

    store_path = direct_config.resolve_path(direct_config.state.path)
    with PrometheusSource.from_config(direct_config.prometheus) as source:
        with StateStore(store_path) as store:
            cold, _ = one_cycle(direct_config, store, source, cold_at)
        copy_state(store_path, recorded_config.resolve_path(recorded_config.state.path))
        with StateStore(store_path) as store:
            direct, slo_results = one_cycle(direct_config, store, source, warm_at)

    # The recorded series for the warm cycle and the leak check's minutes after it, every
    # 4 minutes (the 5-minute lookback covers each minute between).
    leak_from = warm_at + timedelta(minutes=1)
    started = time.perf_counter()
    write_recorded_series(slo_results, leak_from + timedelta(minutes=args.leak_cycles),
                          tmp / "recorded.om", minutes=args.leak_cycles + 12, every_minutes=4)
    server.stop()
    backfill(tmp / "recorded.om", server.data_dir)
    (tmp / "recorded.om").unlink()
    server.start()
    print(f"recorded series for {len(specs)} SLOs over {args.leak_cycles + 12} minutes written and backfilled "
          f"in {time.perf_counter() - started:.1f}s")
    # The recorded cycle and the memory check in a fresh process that imports what the
    # daemon imports (not the simulator): its RSS and peak RSS are the daemon's.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        recorded, leak = pool.submit(recorded_phase, str(paths["recorded"]), warm_at, leak_from,
                                     args.leak_cycles).result()
    report(len(specs), len(direct_config.models), rss_start, peak_start, naive, cold, direct, recorded, leak)


def ratio(naive: float, ours: float) -> str:
    return f"{naive / ours:.1f}x" if ours else "inf"


def report(slo_count: int, model_count: int, rss_start: int, peak_start: int, naive: Naive, cold: Cycle,
           direct: Cycle, recorded: Cycle, leak: LeakCheck) -> None:
    print(f"{slo_count} SLOs, {model_count} models, default rules; cold cycle at {cold.at:%Y-%m-%dT%H:%MZ}, "
          f"warm cycles a minute later; RSS before any cycle {mib(rss_start)} (peak {mib(peak_start)})")
    print(f"naive loop (baseline): {naive.seconds:7.2f}s  {naive.queries:5d} queries  {naive.samples:,} samples  "
          f"(SLOs {naive.slo_seconds:.2f}s / {naive.slo_queries}, measured on {naive.slo_sample}; "
          f"models {naive.model_seconds:.2f}s / {naive.model_queries}, measured on {naive.model_sample}); "
          f"peak RSS {mib(naive.peak_rss_kib)}")
    for name, cycle in (("direct, cold", cold), ("direct", direct), ("recorded", recorded)):
        print(f"{name + ' cycle:':22s} {cycle.seconds:7.2f}s  {cycle.queries:5d} queries  "
              f"{cycle.samples:,} samples (largest query so far {cycle.max_query_samples:,}); "
              f"RSS {mib(cycle.rss_kib)}, peak {mib(cycle.peak_rss_kib)}")
        print(f"{'':23s}vs naive: {ratio(naive.seconds, cycle.seconds)} faster, "
              f"{ratio(naive.queries, cycle.queries)} fewer queries, "
              f"{ratio(naive.samples, cycle.samples)} fewer samples; peak RSS "
              f"{cycle.peak_rss_kib / naive.peak_rss_kib:.2f}x the naive loop's")
        split = ", ".join(f"{stage} {seconds:.2f}s/{cycle.stage_queries[stage]}q/"
                          f"{cycle.stage_samples[stage]:,} samples/RSS after {mib(cycle.stage_rss_kib[stage])} "
                          f"(peak so far {mib(cycle.stage_peak_kib[stage])})"
                          for stage, seconds in cycle.stage_seconds.items())
        rest = cycle.seconds - cycle.producers_seconds
        print(f"{'':23s}side by side in {cycle.producers_seconds:.2f}s: {split}; then rules+state+notifications "
              f"{rest:.2f}s; after the cycle, the UI snapshot {cycle.snapshot_seconds:.2f}s; {cycle.signals} signals, "
              f"{cycle.firing} alerts firing, {cycle.notifications} notifications queued")
    print(f"{'':23s}(the recorded cycle and the memory check run in a fresh process importing what the daemon "
          f"does: RSS {mib(leak.rss_before_kib)} after imports and config, before any cycle)")
    steps = sorted(leak.rss_by_cycle)
    cycles = steps[-1]
    print(f"memory over {cycles} cycles: the {leak.slo_count:,}-SLO, {leak.model_count}-model config, "
          f"recorded mode, a minute apart from {recorded.at + timedelta(minutes=1):%H:%MZ}")
    seconds = sorted(leak.cycle_seconds)
    print(f"  {leak.seconds:.0f}s; per cycle median {statistics.median(seconds):.2f}s, "
          f"p95 {seconds[int(0.95 * (len(seconds) - 1))]:.2f}s, max {seconds[-1]:.2f}s; queries per cycle median "
          f"{statistics.median(leak.cycle_queries):.0f}, max {max(leak.cycle_queries)}; "
          f"{leak.transitions} alert transitions, {leak.notifications} notifications queued")
    print("  RSS after cycle " + ", ".join(f"{c}: {mib(leak.rss_by_cycle[c])}" for c in steps))
    marks = [c for c in (1, 100, 250, 500) if c in leak.rss_by_cycle]
    print("  RSS at cycles " + ", ".join(f"{c}: {leak.rss_by_cycle[c] / 1024:.1f} MiB" for c in marks))
    print(f"  peak RSS of that process over the recorded cycle and all {cycles} cycles: "
          f"{leak.peak_rss_kib / 1024:.1f} MiB; it grew at cycles "
          + (", ".join(f"{c} ({kib / 1024:.1f} MiB, {q} queries)" for c, kib, q in leak.peak_growth) or "none"))
    settled = [c for c in steps if c >= 100]
    if len(settled) >= 2:
        slope = statistics.linear_regression(settled, [leak.rss_by_cycle[c] for c in settled]).slope
        print(f"  growth from cycle {settled[0]} to {cycles}: "
              f"{(leak.rss_by_cycle[cycles] - leak.rss_by_cycle[settled[0]]) / 1024:+.1f} MiB "
              f"(least-squares slope {slope * 100:+.0f} KiB per 100 cycles); "
              f"{'flat' if abs(slope) * 100 <= FLAT_KIB_PER_100_CYCLES else 'NOT flat'} "
              f"by the bound of {FLAT_KIB_PER_100_CYCLES} KiB per 100 cycles")

if __name__ == "__main__":
    sys.exit(main())
