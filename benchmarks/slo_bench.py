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

Grouped SLOs: 100 specs x 10 groups (`group_by: [tenant]`, one `sum by (tenant)` query
per window for a spec's 10 groups) against the same 1,000 SLO instances written as
1,000 ungrouped SLOs (one `tenant="..."` selector each), both direct, on 20 per-tenant
counters backfilled for the purpose (one tenant burns 5% for the 40 minutes before the
evaluation). Wall time, HTTP queries and sub-queries (the PromQL the engine folds),
and whether the 1,000 instances' decisions and burn rates agree.

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
from monitor.simulate.fleet import FLEET, Fleet, SimSeries  # noqa: E402
from monitor.simulate.local_prometheus import LocalPrometheus, backfill  # noqa: E402
from monitor.slo import EvaluationMode, evaluate_slos  # noqa: E402
from monitor.simulate.writers import write_openmetrics  # noqa: E402
from monitor.slo.evaluate import promql_duration, sli_queries, slo_windows  # noqa: E402
from monitor.slo.spec import EventsSli, SloSpec  # noqa: E402
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


GROUPED_SPECS = 100
GROUPS = 10
TENANT_REQUESTS_PER_MINUTE = 50.0
BURNING_TENANT = "t07"


def write_tenant_history(path: Path, at, days: int = 7) -> None:
    """Per-tenant request counters (code 200 and 500) over `days` to FLEET_END; BURNING_TENANT
    fails 5% of requests for the 40 minutes before `at`."""
    import numpy as np

    start = FLEET_END - timedelta(days=days)
    timestamps = start.timestamp() + np.arange(days * 1440 + 1) * 60.0
    rng = np.random.default_rng(14)
    fleet = Fleet(start, FLEET_END, 14, timestamps)
    burning = (timestamps > (at - timedelta(minutes=40)).timestamp()) & (timestamps <= at.timestamp())
    for k in range(GROUPS):
        tenant = f"t{k:02d}"
        requests = rng.poisson(TENANT_REQUESTS_PER_MINUTE, len(timestamps))
        ratio = np.where(burning, 0.05, 0.0005) if tenant == BURNING_TENANT else np.full(len(timestamps), 0.0005)
        errors = rng.binomial(requests, ratio)
        for code, counts in (("200", requests - errors), ("500", errors)):
            fleet.series.append(SimSeries("bench_requests_total", {"tenant": tenant, "code": code},
                                          np.cumsum(counts.astype(np.float64))))
    write_openmetrics(fleet, path)


def _tenant_sli(selector: str, group: bool) -> EventsSli:
    agg = "sum by (tenant)" if group else "sum"
    return EventsSli(error_query=f'{agg} (rate(bench_requests_total{{{selector},code="500"}}[{{{{.window}}}}]))',
                     total_query=f"{agg} (rate(bench_requests_total{{{selector}}}[{{{{.window}}}}]))")


def grouped_and_flat_specs() -> tuple[list[SloSpec], list[SloSpec]]:
    """100 grouped specs, and their 1,000 instances as ungrouped specs (distinct selectors throughout)."""
    grouped, flat = [], []
    for g in range(GROUPED_SPECS):
        grouped.append(SloSpec(service="bench", name=f"grouped-{g}", objective=0.999,
                               sli=_tenant_sli(f'bench_id!="{g}"', group=True), period=timedelta(days=30),
                               group_by=("tenant",), max_groups=GROUPS))
        for k in range(GROUPS):
            flat.append(SloSpec(service="bench", name=f"grouped-{g}-t{k:02d}", objective=0.999,
                                sli=_tenant_sli(f'tenant="t{k:02d}",bench_id!="{g}"', group=False),
                                period=timedelta(days=30)))
    return grouped, flat


def sub_queries(specs: list[SloSpec], at) -> int:
    """The distinct PromQL sub-queries a direct evaluation plans (what the engine folds)."""
    return len({q for spec in specs for window in slo_windows(spec, at).values()
                for q in sli_queries(spec, promql_duration(window)).values()})


def run_grouped(server_url: str, at) -> None:
    grouped, flat = grouped_and_flat_specs()
    measured = {}
    with PrometheusSource(server_url, timeout=120) as source:
        for name, specs in (("grouped", grouped), ("ungrouped", flat)):
            evaluate_slos(source, specs[:20], at)  # warm the server and the engine's samples per shape
            source.stats = QueryStats()
            started = time.perf_counter()
            results = evaluate_slos(source, specs, at)
            measured[name] = (time.perf_counter() - started, source.stats, results, sub_queries(specs, at))
    (g_s, g_stats, g_results, g_sub), (f_s, f_stats, f_results, f_sub) = measured["grouped"], measured["ungrouped"]
    by_instance = {(r.spec.name, dict(r.group)["tenant"]): r for r in g_results}
    agree = close = 0
    for r in f_results:
        name, tenant = r.spec.name.rsplit("-", 1)
        twin = by_instance.get((name, tenant))
        if twin is None:
            continue
        agree += (twin.page, twin.ticket) == (r.page, r.ticket)
        close += all(a == b or (a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(b)))
                     for a, b in ((twin.burn_rate[k], r.burn_rate[k]) for k in r.burn_rate))
    pages = sum(1 for r in g_results if r.page)
    print(f"grouped SLOs: {GROUPED_SPECS} specs x {GROUPS} groups = {len(g_results)} instances vs "
          f"{len(flat)} ungrouped SLOs (direct, {len(slo_windows(flat[0], at))} windows)")
    for name, seconds, stats, subs in (("grouped:  ", g_s, g_stats, g_sub), ("ungrouped:", f_s, f_stats, f_sub)):
        print(f"  {name} {seconds:8.2f}s  {stats.queries:6d} queries  {subs:6d} sub-queries  "
              f"{stats.samples:12,d} samples")
    print(f"  ratio ungrouped/grouped: {f_s / g_s:.1f}x wall time, {f_stats.queries / g_stats.queries:.1f}x queries, "
          f"{f_sub / g_sub:.1f}x sub-queries, {f_stats.samples / max(g_stats.samples, 1):.1f}x samples")
    print(f"  instances agreeing: decisions {agree}/{len(flat)}, burn rates {close}/{len(flat)}; "
          f"{pages} instances page (tenant {BURNING_TENANT} of each spec)")


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
        write_tenant_history(tmp / "tenants.om", at)
        backfill(tmp / "tenants.om", data)
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
            run_grouped(server.url, at)
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
