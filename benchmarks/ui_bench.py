"""Server-side render time of the UI's /slos at 1,000 SLOs, and the size of the cycle snapshot it reads.

The 1,000 SLOs are slo_bench.py's (the fleet's six services, four objectives, 28 and
30-day periods), with deterministic pseudo-random event counts turned into results by
the real burn-rate math (`monitor.slo.burn_rate`) and into signals by the real producer
(`slo_signals`); a few of them burn fast enough to page. The snapshot is saved in a
real state store as a cycle saves it, and /slos is requested through the UI's WSGI app
in-process (routing, the rows, sorting, the sandboxed template), with no network.

Measured, in one process:
- the snapshot: encoded size, encode time, decode time (once per cycle);
- /slos warm (the snapshot already decoded: every refresh until the next cycle), and
  cold (a new cycle: decode, rows, render);
- the baseline: `json.dumps` of the same rows' figures (the /api/v1/slos body), the
  least any renderer of that data could cost; the page's render is printed as a ratio to it.

Target: /slos under 300 ms server-side at 1,000 SLOs.

Run: .venv/bin/python benchmarks/ui_bench.py
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from fleet_history import FLEET_END  # noqa: E402
from monitor.config import Config  # noqa: E402
from monitor.slo.burn_rate import PAGE_CONDITIONS, TICKET_CONDITIONS, WINDOWS, alert_decision  # noqa: E402
from monitor.slo.burn_rate import burn_rate, error_budget_remaining, error_ratio  # noqa: E402
from monitor.slo.evaluate import SloResult  # noqa: E402
from monitor.slo.signals import slo_signals  # noqa: E402
from monitor.store import StateStore  # noqa: E402
from monitor.ui import snapshot, views  # noqa: E402
from monitor.ui.app import UiContext, make_ui_app  # noqa: E402
from slo_bench import build_specs  # noqa: E402

TARGET_MS = 300.0


def synthetic_results(count: int, seed: int = 7) -> list[SloResult]:
    """Results for `count` of slo_bench's specs: events per window from a seeded generator;
    one SLO in 50 burns at 20x its budget in the short windows (pages)."""
    rng = np.random.default_rng(seed)
    results = []
    for n, spec in enumerate(build_specs(count)):
        windows = {**WINDOWS, spec.period_key: spec.period_window(FLEET_END)}
        burning = n % 50 == 0
        totals, bads, ratios, burns = {}, {}, {}, {}
        for key, window in windows.items():
            total = float(rng.integers(50, 200) * window.total_seconds())
            share = (1 - spec.objective) * (20.0 if burning and window <= timedelta(hours=1) else rng.uniform(0, 2))
            bad = float(round(total * share))
            totals[key], bads[key] = total, bad
            ratios[key] = error_ratio(bad, total)
            burns[key] = burn_rate(ratios[key], spec.objective)
        page = alert_decision(PAGE_CONDITIONS, burns, spec.period_length(FLEET_END))
        ticket = alert_decision(TICKET_CONDITIONS, burns, spec.period_length(FLEET_END))
        budget = error_budget_remaining(bads[spec.period_key], totals[spec.period_key], spec.objective)
        results.append(SloResult(spec, FLEET_END, ratios, burns, totals, bads, budget, page, ticket))
    return results


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    signals = slo_signals(synthetic_results(args.slos))
    with tempfile.TemporaryDirectory() as tmp, StateStore(Path(tmp) / "state.db") as store:
        started = FLEET_END - timedelta(seconds=20)
        encode_s = timed(lambda: snapshot.encode(snapshot.CycleSnapshot(1, FLEET_END, started, FLEET_END,
                                                                         tuple(signals))), 5)
        size = snapshot.save(store, 1, FLEET_END, started, FLEET_END, signals)
        blob = store.get_blob(snapshot.NAMESPACE, snapshot.KEY)
        decode_s = timed(lambda: snapshot.decode(blob), 5)
        plain = len(json.dumps([{"name": s.name, "labels": dict(s.labels), "value": s.value,
                                 "evidence": dict(s.evidence)} for s in signals], separators=(",", ":")))

        config = Config()
        client = Client(make_ui_app(UiContext(store=store, config=lambda: config, clock=lambda: FLEET_END)))

        def render() -> int:
            response = client.get("/slos")
            assert response.status_code == 200, response.status_code
            return len(response.data)

        page_bytes = render()  # the first also compiles the template
        warm = timed(render, args.repeat)

        def first_render_after(save_cycle, times: int = 5) -> list[float]:
            """The first render after each of `times` new cycles (the save itself not timed)."""
            spent = []
            for _ in range(times):
                save_cycle()
                spent += timed(render, 1)
            return spent

        cycle = [1]

        def saved_here() -> None:
            # The replica that ran the cycle: its cache holds the snapshot it saved.
            cycle[0] += 1
            snapshot.save(store, cycle[0], FLEET_END, started, FLEET_END, signals)

        def saved_elsewhere() -> None:
            # A standby: another process saved it; decoded here once, on the first view.
            cycle[0] += 1
            saved = snapshot.encode(snapshot.CycleSnapshot(cycle[0], FLEET_END, started, FLEET_END, tuple(signals)))
            store.put_blob(snapshot.NAMESPACE, snapshot.KEY, saved, FLEET_END.timestamp())

        leader_s = first_render_after(saved_here)
        standby_s = first_render_after(saved_elsewhere)
        rows = views.select_slos(views.slo_rows(snapshot.decode(blob).signals))
        baseline = timed(lambda: json.dumps([r.to_json() for r in rows], separators=(",", ":")), args.repeat)

    instances = len(rows)
    paging = sum(r.status is views.SloStatus.PAGE for r in rows)
    warm_ms, base_ms = statistics.median(warm) * 1000, statistics.median(baseline) * 1000
    print(f"/slos at {instances:,} SLOs ({len(signals):,} signals, {paging} paging): a page of "
          f"{page_bytes / 1e6:.2f} MB")
    print(f"  snapshot: {size / 1e3:,.0f} kB in the store (plain JSON of the signals: {plain / 1e6:.1f} MB), "
          f"encode {statistics.median(encode_s) * 1000:.0f} ms, decode {statistics.median(decode_s) * 1000:.0f} ms"
          f" (once per cycle)")
    print(f"  render /slos warm: median {warm_ms:.1f} ms, max {max(warm) * 1000:.1f} ms over {args.repeat}")
    leader_ms, standby_ms = statistics.median(leader_s) * 1000, statistics.median(standby_s) * 1000
    print(f"  first render /slos after a new cycle: {leader_ms:.1f} ms where the cycle ran (rows + render), "
          f"{standby_ms:.1f} ms on a standby (decode + rows + render); medians of 5")
    print(f"  baseline json.dumps of the same rows: median {base_ms:.1f} ms; render / baseline = "
          f"{warm_ms / base_ms:.1f}x")
    verdict = "met" if warm_ms < TARGET_MS else "MISSED"
    print(f"  target: /slos under {TARGET_MS:.0f} ms server-side (warm, as every view until the next cycle): "
          f"{verdict}")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
