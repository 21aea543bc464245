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
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-out" / "drift-e2e"
ROWS = 2_000_000
REPEATS = 3
TARGET = 4.0
EXACT_KEYS = ("n_reference", "n_current", "drifted")
CLOSE_KEYS = ("psi", "js", "ks", "wasserstein", "wasserstein_norm")


def write_files() -> tuple[Path, Path]:
    """Reference and current: one stable column, one small shift, one shift and one spread that drift."""
    OUT.mkdir(parents=True, exist_ok=True)
    reference_path, current_path = OUT / "reference.parquet", OUT / "current.parquet"
    if reference_path.exists() and current_path.exists():
        return reference_path, current_path
    rng = np.random.default_rng(2026)
    reference = {"latency_ms": rng.gamma(2.0, 20.0, ROWS), "score": rng.normal(0.0, 1.0, ROWS),
                 "amount": rng.lognormal(3.0, 1.0, ROWS), "age": rng.normal(40.0, 12.0, ROWS)}
    current = {"latency_ms": rng.gamma(2.0, 20.0, ROWS), "score": rng.normal(0.02, 1.0, ROWS),
               "amount": rng.lognormal(3.4, 1.0, ROWS), "age": rng.normal(40.0, 18.0, ROWS)}
    for path, columns in ((reference_path, reference), (current_path, current)):
        pq.write_table(pa.table(columns), path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return reference_path, current_path


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, child CPU seconds, stdout) of one run; exits on failure."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


def best(command: list[str]) -> tuple[float, float, str]:
    timed(command)  # untimed warm-up
    runs = [timed(command) for _ in range(REPEATS)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[-1][2]


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
    reference, current = write_files()
    monitor_command = [sys.executable, "-m", "monitor", "drift", "--reference", str(reference),
                       "--current", str(current), "--json"]
    scipy_command = [sys.executable, str(ROOT / "benchmarks" / "drift_scipy_baseline.py"), str(reference),
                     str(current)]
    print(f"monitor drift end to end: {ROWS:,} rows x 4 numeric columns of Parquet per side; "
          f"best of {REPEATS} after one warm-up; cores: {os.cpu_count()}")
    monitor_wall, monitor_cpu, monitor_out = best(monitor_command)
    scipy_wall, scipy_cpu, scipy_out = best(scipy_command)
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
