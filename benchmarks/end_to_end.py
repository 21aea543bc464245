"""What the end-to-end drift benchmarks share: the Parquet inputs, and timing a command as a process.

Both `drift_e2e_bench.py` (against a plain scipy script) and `evidently_bench.py`
(against Evidently) time whole processes, start-up included, on the same shape of
data: four numeric columns, one stable, one slightly shifted, two that drift.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent


def write_drift_files(out: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """Reference and current Parquet files in `out` (kept between runs): one stable column,
    one small shift, one shift and one spread that drift."""
    out.mkdir(parents=True, exist_ok=True)
    reference_path, current_path = out / "reference.parquet", out / "current.parquet"
    if reference_path.exists() and current_path.exists():
        return reference_path, current_path
    rng = np.random.default_rng(seed)
    reference = {"latency_ms": rng.gamma(2.0, 20.0, rows), "score": rng.normal(0.0, 1.0, rows),
                 "amount": rng.lognormal(3.0, 1.0, rows), "age": rng.normal(40.0, 12.0, rows)}
    current = {"latency_ms": rng.gamma(2.0, 20.0, rows), "score": rng.normal(0.02, 1.0, rows),
               "amount": rng.lognormal(3.4, 1.0, rows), "age": rng.normal(40.0, 18.0, rows)}
    for path, columns in ((reference_path, reference), (current_path, current)):
        pq.write_table(pa.table(columns), path.with_suffix(".tmp"))
        path.with_suffix(".tmp").rename(path)
    return reference_path, current_path


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, child CPU seconds, stdout) of one run of `command`; exits on failure."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed ({result.returncode}): "
                         f"{result.stderr.strip()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result.stdout


def best(command: list[str], repeats: int) -> tuple[float, float, str]:
    """The best wall and CPU seconds of `repeats` runs after one untimed one (.pyc files, the page cache)."""
    timed(command)
    runs = [timed(command) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs), runs[-1][2]
