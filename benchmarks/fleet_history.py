"""Setup shared by the benchmarks that query a local Prometheus: the simulated fleet's history,
the benchmark SLIs and the recorded SLO series.

Not a benchmark itself (`make bench` runs `*_bench.py` only).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.simulate.local_prometheus import backfill
from monitor.slo.evaluate import ERROR_RATIO_RECORD, TOTAL_RATE_RECORD, SloResult, slo_windows
from monitor.slo.spec import EventsSli, SloSpec, render_window
from monitor.sources.prometheus import PrometheusSource, escape_label_value

REPO = Path(__file__).resolve().parent.parent
# The test suite's fleet (tests/conftest.py), so its cached blocks can be reused.
FLEET_END = datetime(2026, 11, 23, tzinfo=timezone.utc)
FLEET_DAYS, FLEET_SEED = 7, 1
LATENCY_THRESHOLDS = ("0.1", "0.25", "0.5", "1.0")


@dataclass(frozen=True)
class FleetHistory:
    """The fleet's TSDB blocks (`data_dir`) and what `monitor simulate` writes beside them (`sim_dir`)."""

    data_dir: Path
    sim_dir: Path
    origin: str          # "test cache" or "simulated and backfilled"
    seconds: float


def cached_sim_dir() -> Path | None:
    """The test suite's written fleet with backfilled blocks, when present (same key as tests/conftest.py)."""
    # The simulator (scipy, pandas) is imported only where used: the benchmarks measure
    # the daemon's memory in processes that import this module.
    import monitor.simulate.fleet as fleet_module
    import monitor.simulate.writers as writers_module

    digest = hashlib.sha256()
    for module in (fleet_module, writers_module):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(f"{FLEET_END.isoformat()}|{FLEET_DAYS}|{FLEET_SEED}".encode())
    cached = REPO / ".test-cache" / digest.hexdigest()[:16]
    return cached if (cached / "blocks").is_dir() else None


def prepare_history(tmp: Path) -> FleetHistory:
    """Blocks in tmp/data and the written fleet in tmp/sim: copied from the test cache, else built."""
    data, sim = tmp / "data", tmp / "sim"
    cached = cached_sim_dir()
    started = time.perf_counter()
    if cached:
        shutil.copytree(cached / "blocks", data)
        shutil.copytree(cached, sim, ignore=lambda directory, _names: ["blocks"] if Path(directory) == cached else [])
    else:
        from monitor.simulate.fleet import generate_fleet
        from monitor.simulate.writers import write_fleet

        fleet = generate_fleet(days=FLEET_DAYS, seed=FLEET_SEED, end=FLEET_END)
        paths = write_fleet(fleet, sim)
        backfill(paths["metrics"], data)
        paths["metrics"].unlink()  # 100 MB that the blocks now hold
    return FleetHistory(data, sim, "test cache" if cached else "simulated and backfilled",
                        time.perf_counter() - started)


def bench_sli(n: int) -> tuple[str, EventsSli]:
    """The n-th benchmark SLI (name, events SLI) over the fleet's service `FLEET[n % 6]`.

    Availability and latency SLIs with an extra `bench_id!="<n>"` matcher, which every
    series satisfies: each SLI selects the same series as the fleet's own, but no two
    share a query, so dedup does not flatter the batched modes.
    """
    from monitor.simulate.fleet import FLEET

    service = FLEET[n % len(FLEET)].name
    selector = f'service="{escape_label_value(service)}",bench_id!="{n}"'
    if n % 3 == 2:
        le = LATENCY_THRESHOLDS[(n // 3) % len(LATENCY_THRESHOLDS)]
        return f"latency-{n}", EventsSli(
            error_query=(f"sum(rate(http_request_duration_seconds_count{{{selector}}}[{{{{.window}}}}])) - "
                         f'sum(rate(http_request_duration_seconds_bucket{{{selector},le="{le}"}}[{{{{.window}}}}]))'),
            total_query=f"sum(rate(http_request_duration_seconds_count{{{selector}}}[{{{{.window}}}}]))")
    return f"availability-{n}", EventsSli(
        error_query=f'sum(rate(http_requests_total{{{selector},code=~"5.."}}[{{{{.window}}}}]))',
        total_query=f"sum(rate(http_requests_total{{{selector}}}[{{{{.window}}}}]))")


def write_recorded_series(results: list[SloResult], at: datetime, path: Path, minutes: int = 10,
                          every_minutes: int = 1) -> None:
    """The series `monitor slo rules` records, as OpenMetrics samples every `every_minutes` over the
    `minutes` before `at`, each SLO's values as its results at their evaluation time.

    Prometheus only evaluates rules at wall-clock now, and backfilling thousands of rules
    with `promtool create-blocks-from rules` takes tens of minutes; tests/test_slo_rules.py
    shows the rule file records exactly these values.
    """
    stamps = [int((at - timedelta(minutes=m)).timestamp()) for m in range(minutes, -1, -every_minutes)]
    with open(path, "w", encoding="utf-8") as out:
        for result in results:
            spec = result.spec
            for key, window in slo_windows(spec, result.at).items():
                labels = (f'sloth_id="{escape_label_value(spec.id)}",'
                          f'sloth_service="{escape_label_value(spec.service)}",'
                          f'sloth_slo="{escape_label_value(spec.name)}",sloth_window="{key}"')
                total = result.events_total[key]
                bad = result.events_bad[key]
                ratio = "NaN" if not total or bad is None else repr(bad / total)
                rate = "NaN" if total is None else repr(total / window.total_seconds())
                for name, value in ((ERROR_RATIO_RECORD.format(window=key), ratio),
                                    (TOTAL_RATE_RECORD.format(window=key), rate)):
                    out.writelines(f"{name}{{{labels}}} {value} {t}\n" for t in stamps)
        out.write("# EOF\n")


def naive_slo_loop(source: PrometheusSource, specs: list[SloSpec], at: datetime) -> int:
    """The baseline both benchmarks compare with: one `(errors)/(total)` query per SLO per window,
    sequentially, as a simple script would. Returns the number of queries made."""
    made = 0
    for spec in specs:
        for key, window in slo_windows(spec, at).items():
            duration = key if key in ("5m", "30m", "1h", "2h", "6h", "1d", "3d") else f"{window.days}d"
            source.instant(f"({render_window(spec.sli.error_query, duration)}) / "
                           f"({render_window(spec.sli.total_query, duration)})", at)
            made += 1
    return made
