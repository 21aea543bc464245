"""One SLO evaluation cycle for 1,000 SLOs over the simulated fleet, against a local Prometheus.

Compares, in one run and on one server:
- naive:    one query per SLO per window, `(errors)/(total)`, one after another (the baseline);
- direct:   `evaluate_slos` through the query engine: every window's distinct sub-queries folded into few
            queries under the sample budget, run concurrently;
- recorded: `evaluate_slos(mode=RECORDED)` reading the series `monitor slo rules` records (one selector per
            window, folded).

For each: wall time, HTTP queries, and the samples Prometheus read (`stats=all`'s
totalQueryableSamples, summed, and the most one query read).

The 1,000 SLOs are availability and latency SLOs of the fleet's six services with
distinct selectors (an extra `bench_id!="<n>"` matcher, which every series satisfies),
so no two share a query and dedup does not flatter the batched modes.

The recorded series are written from the direct results (same names and labels as
the rule file) and backfilled with promtool: Prometheus only evaluates rules at
wall-clock now, and backfilling 18,000 rules with `promtool create-blocks-from rules`
would take tens of minutes. tests/test_slo_rules.py shows the rule file records
exactly these values. The naive loop runs on a sample of the SLOs (--naive-slos) and
is scaled to 1,000, to keep the benchmark within a couple of minutes on a shared box.

Run: .venv/bin/python benchmarks/slo_bench.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fleet_history import FLEET_END, bench_sli, naive_slo_loop, prepare_history, write_recorded_series  # noqa: E402
from monitor.simulate.fleet import FLEET  # noqa: E402
from monitor.simulate.local_prometheus import LocalPrometheus, backfill  # noqa: E402
from monitor.slo import EvaluationMode, evaluate_slos  # noqa: E402
from monitor.slo.evaluate import slo_windows  # noqa: E402
from monitor.slo.spec import SloSpec  # noqa: E402
from monitor.sources.prometheus import PrometheusSource, QueryStats  # noqa: E402

OBJECTIVES = (0.99, 0.995, 0.999, 0.9995)


def build_specs(count: int) -> list[SloSpec]:
    specs = []
    for n in range(count):
        name, sli = bench_sli(n)
        period = timedelta(days=28 if n % 10 == 0 else 30)
        specs.append(SloSpec(service=FLEET[n % len(FLEET)].name, name=name,
                             objective=OBJECTIVES[n % len(OBJECTIVES)], sli=sli, period=period))
    return specs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--naive-slos", type=int, default=100, help="SLOs the naive loop runs (scaled up)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="slo-bench-") as tmp_name:
        tmp = Path(tmp_name)
        history = prepare_history(tmp)
        data = history.data_dir
        print(f"history: {history.origin} in {history.seconds:.1f}s")

        specs = build_specs(args.slos)
        at = FLEET_END - timedelta(hours=10)
        server = LocalPrometheus(data, log_path=tmp / "prometheus.log").start()
        try:
            with PrometheusSource(server.url, timeout=120) as source:
                # Warm the server's caches and connections, and the engine's samples per query shape.
                evaluate_slos(source, specs[:20], at)
                source.stats = QueryStats()
                started = time.perf_counter()
                direct = evaluate_slos(source, specs, at)
                direct_s = time.perf_counter() - started
                direct_stats = source.stats
                problems = sum(1 for r in direct if r.problems)

                sample = specs[:args.naive_slos]
                source.stats = QueryStats()
                started = time.perf_counter()
                naive_queries_sample = naive_slo_loop(source, sample, at)
                naive_sample_s = time.perf_counter() - started
                naive_samples_sample = source.stats.samples
            scale = len(specs) / len(sample)
            naive_s, naive_queries = naive_sample_s * scale, round(naive_queries_sample * scale)
            naive_samples = round(naive_samples_sample * scale)

            write_recorded_series(direct, at, tmp / "recorded.om")
            server.stop()
            backfill(tmp / "recorded.om", data)
            server.start()
            with PrometheusSource(server.url, timeout=120) as source:
                evaluate_slos(source, specs[:20], at, mode=EvaluationMode.RECORDED)
                source.stats = QueryStats()
                started = time.perf_counter()
                recorded = evaluate_slos(source, specs, at, mode=EvaluationMode.RECORDED)
                recorded_s = time.perf_counter() - started
                recorded_stats = source.stats
        finally:
            server.stop()

    agree = sum(1 for a, b in zip(direct, recorded) if (a.page, a.ticket) == (b.page, b.ticket))
    print(f"{len(specs)} SLOs x {len(slo_windows(specs[0], at))} windows, evaluated at {at:%Y-%m-%dT%H:%MZ}; "
          f"{problems} SLOs with query problems")
    print(f"naive loop (baseline): {naive_s:8.2f}s  {naive_queries:6d} queries  {naive_samples:12,d} samples  "
          f"(measured on {len(sample)} SLOs: {naive_sample_s:.2f}s, {naive_queries_sample} queries; scaled x{scale:g})")
    for name, seconds, stats in (("direct (batched):     ", direct_s, direct_stats),
                                 ("recorded (rule file): ", recorded_s, recorded_stats)):
        print(f"{name} {seconds:8.2f}s  {stats.queries:6d} queries  {stats.samples:12,d} samples  "
              f"-> {naive_s / seconds:6.1f}x faster, {naive_queries / stats.queries:6.1f}x fewer queries than naive; "
              f"at most {stats.max_query_samples:,d} samples in one query")
    print(f"page/ticket decisions equal in direct and recorded mode for {agree}/{len(specs)} SLOs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
