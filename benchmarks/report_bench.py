"""Benchmark: render the weekly report for a large fleet (50 services, 20 models).

The report model is generated (monitor.report.synthetic), so this measures
rendering alone: 50 burn-rate charts, 40 prediction-distribution charts (two
versions per model), the daily cost chart, the templates and the atomic writes.
Baseline, in the same process: the same page with every chart replaced by an
empty SVG (templates, escaping and writing only), so the ratio is the charts' cost.
The file must stay under 2 MB.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from markupsafe import Markup

from monitor.report import render
from monitor.report.period import iso_week_period
from monitor.report.synthetic import synthetic_report

SERVICES, MODELS = 50, 20
SIZE_LIMIT_BYTES = 2 * 1024 * 1024


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    model = synthetic_report(iso_week_period("2026-W47"), services=SERVICES, models=MODELS, seed=7)
    environment = render.template_environment()
    out = Path(tempfile.mkdtemp(prefix="report-bench-"))
    render.write_report(model, out / "warmup", environment)  # imports, font cache, template compile

    full_s, written = _timed(lambda: render.write_report(model, out / "full", environment), repeat=2)
    size = written.html.stat().st_size

    empty = Markup('<svg class="chart" viewBox="0 0 1 1"></svg>')
    no_charts = render.ReportCharts({r.slo_id: empty for r in model.slos.rows},
                                    [empty for _ in model.drift.distributions], empty)
    baseline_s, _ = _timed(lambda: render.write_report(model, out / "baseline", environment, no_charts), repeat=2)
    charts = len(model.slos.rows) + len(model.drift.distributions) + 1

    print(f"report for {SERVICES} services, {MODELS} models ({charts} charts)")
    print(f"  full render + write:        {full_s:8.2f} s   ({full_s / charts * 1000:.0f} ms per chart)")
    print(f"  baseline (no charts):       {baseline_s:8.3f} s")
    print(f"  ratio full / baseline:      {full_s / baseline_s:8.1f}x")
    print(f"  index.html size:            {size / 1024:8.0f} KiB (limit {SIZE_LIMIT_BYTES / 1024:.0f} KiB, "
          f"{size / SIZE_LIMIT_BYTES:.0%} of it)")
    if size >= SIZE_LIMIT_BYTES:
        print("  FAIL: the report exceeds 2 MB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
