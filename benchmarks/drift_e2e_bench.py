"""`monitor drift` end to end, process start to JSON, against a plain scipy script.

2,000,000 rows x 4 numeric columns of Parquet on each side (reference and current),
written once under bench-out/drift-e2e/. Both sides run as subprocesses on the same
files and print the same statistics as JSON:

- monitor: `python -m monitor drift --reference R --current C --json`;
- scipy:   `python benchmarks/drift_scipy_baseline.py R C` (ks_2samp, wasserstein_distance,
           numpy deciles for PSI, jensenshannon; see that file).

Each side runs once untimed (numba's on-disk cache, the OS page cache), then the best
of `REPEATS` wall times is taken; CPU seconds (user + sys of the child) are printed
too, as the machine may be shared. The run fails unless the two JSON outputs agree:
n, psi, js, ks, wasserstein and its norm within 1e-9 relative, the KS p-value within
1e-7 absolute (monitor's large-n series, see monitor/drift/ks_pvalue.py), and every
verdict. Target: monitor at least 4x faster.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from end_to_end import ROOT, best, write_drift_files

OUT = ROOT / "bench-out" / "drift-e2e"
ROWS = 2_000_000
REPEATS = 3
TARGET = 4.0
EXACT_KEYS = ("n_reference", "n_current", "drifted")
CLOSE_KEYS = ("psi", "js", "ks", "wasserstein", "wasserstein_norm")


def check_agreement(ours: dict, theirs: dict) -> None:
    """The comparison is only fair if both sides computed the same numbers."""
    by_name = {c["column"]: c for c in ours["columns"]}
    for expected in theirs["columns"]:
        got = by_name[expected["column"]]
        for key in EXACT_KEYS:
            if got[key] != expected[key]:
                raise SystemExit(f"{expected['column']}.{key}: monitor {got[key]} vs scipy {expected[key]}")
        for key in CLOSE_KEYS:
            if not np.isclose(got[key], expected[key], rtol=1e-9, atol=1e-12):
                raise SystemExit(f"{expected['column']}.{key}: monitor {got[key]} vs scipy {expected[key]}")
        if abs(got["ks_pvalue"] - expected["ks_pvalue"]) > 1e-7:
            raise SystemExit(f"{expected['column']}.ks_pvalue: monitor {got['ks_pvalue']} "
                             f"vs scipy {expected['ks_pvalue']}")
    for key in ("drift_share", "dataset_drift"):
        if ours[key] != theirs[key]:
            raise SystemExit(f"{key}: monitor {ours[key]} vs scipy {theirs[key]}")


def main() -> None:
    reference, current = write_drift_files(OUT, ROWS, seed=2026)
    monitor_command = [sys.executable, "-m", "monitor", "drift", "--reference", str(reference),
                       "--current", str(current), "--json"]
    scipy_command = [sys.executable, str(ROOT / "benchmarks" / "drift_scipy_baseline.py"), str(reference),
                     str(current)]
    print(f"monitor drift end to end: {ROWS:,} rows x 4 numeric columns of Parquet per side; "
          f"best of {REPEATS} after one warm-up; cores: {os.cpu_count()}")
    monitor_wall, monitor_cpu, monitor_out = best(monitor_command, REPEATS)
    scipy_wall, scipy_cpu, scipy_out = best(scipy_command, REPEATS)
    ours, theirs = json.loads(monitor_out), json.loads(scipy_out)
    check_agreement(ours, theirs)
    drifted = [c["column"] for c in ours["columns"] if c["drifted"]]
    print(f"  outputs agree (drifted: {', '.join(drifted) or 'none'}; dataset drift {ours['dataset_drift']})")
    print(f"  monitor drift   {monitor_wall:6.2f} s wall  {monitor_cpu:6.2f} s CPU")
    print(f"  scipy script    {scipy_wall:6.2f} s wall  {scipy_cpu:6.2f} s CPU")
    ratio = scipy_wall / monitor_wall
    print(f"  monitor is {ratio:.1f}x faster end to end (CPU {scipy_cpu / monitor_cpu:.1f}x); "
          f"target >= {TARGET:.0f}x: {'met' if ratio >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
