"""`monitor drift` side by side with Evidently 0.7's DataDriftPreset, end to end.

500,000 rows x 4 numeric columns of Parquet per side (reference and current), under
bench-out/evidently/. Each tool runs as a subprocess from process start to its result:

- monitor:   `python -m monitor drift --reference R --current C --json`;
- Evidently: read both files with pandas, `Report([DataDriftPreset()]).run(current, reference)`,
             its result as a dict (the script is EVIDENTLY_SCRIPT below).

Evidently 0.7 needs pandas < 3, so it runs in its own virtualenv, bench-out/evidently-venv,
created and pip-installed on first use and reused afterwards. If that install is not
possible here, one line says so and monitor's figure is still printed.

Both are timed best of `REPEATS` after one untimed run each. The figures only count if the
two agree: Evidently's per-column score for these columns is the normed Wasserstein
distance, which must equal monitor's `wasserstein_norm` (1e-6 relative), and both must
give the same drifted columns and share. Target: monitor at least 10x faster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from end_to_end import ROOT, best, write_drift_files

OUT = ROOT / "bench-out" / "evidently"
VENV = ROOT / "bench-out" / "evidently-venv"
ROWS = 500_000
REPEATS = 2
TARGET = 10.0
REQUIREMENTS = ["evidently==0.7.*", "pandas<3", "pyarrow"]

EVIDENTLY_SCRIPT = """
import json, sys
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

reference = pd.read_parquet(sys.argv[1])
current = pd.read_parquet(sys.argv[2])
snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
result = {"columns": {}, "share": None}
for metric in snapshot.dict()["metrics"]:
    kind = metric["config"]["type"]
    if kind.endswith("DriftedColumnsCount"):
        result["share"] = float(metric["value"]["share"])
    elif kind.endswith("ValueDrift"):
        config = metric["config"]
        score = float(metric["value"])
        result["columns"][config["column"]] = {"method": config["method"], "score": score,
                                               "drifted": score >= config["threshold"]}
print(json.dumps(result))
"""


def evidently_python() -> tuple[Path | None, str]:
    """The virtualenv's python with Evidently 0.7 importable, or None and why not."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import evidently, pandas; assert evidently.__version__.startswith('0.7')"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, "reused"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True,
                       capture_output=True, text=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        last = [line for line in str(detail).splitlines() if line.strip() and "Location" not in line][-1:]
        return None, f"cannot install {' '.join(REQUIREMENTS)} into {VENV}: {' '.join(last) or exc}"
    if subprocess.run(check, capture_output=True).returncode != 0:
        return None, f"Evidently 0.7 installed into {VENV} but does not import"
    return python, "installed"


def check_agreement(ours: dict, theirs: dict) -> None:
    by_name = {c["column"]: c for c in ours["columns"]}
    for name, column in theirs["columns"].items():
        if column["method"] != "Wasserstein distance (normed)":
            raise SystemExit(f"{name}: Evidently used {column['method']}, not the normed Wasserstein distance")
        ours_norm = by_name[name]["wasserstein_norm"]
        if not np.isclose(ours_norm, column["score"], rtol=1e-6, atol=1e-12):
            raise SystemExit(f"{name}: monitor wasserstein_norm {ours_norm} vs Evidently {column['score']}")
        if by_name[name]["drifted"] != column["drifted"]:
            raise SystemExit(f"{name}: monitor drifted={by_name[name]['drifted']} vs Evidently {column['drifted']}")
    if not np.isclose(ours["drift_share"], theirs["share"]):
        raise SystemExit(f"drift share: monitor {ours['drift_share']} vs Evidently {theirs['share']}")


def main() -> None:
    reference, current = write_drift_files(OUT, ROWS, seed=7)
    print(f"monitor drift vs Evidently 0.7 DataDriftPreset: {ROWS:,} rows x 4 numeric columns of Parquet per "
          f"side, end to end, best of {REPEATS} after one warm-up; cores: {os.cpu_count()}")
    monitor_s, monitor_cpu, monitor_out = best([sys.executable, "-m", "monitor", "drift", "--reference",
                                                str(reference), "--current", str(current), "--json"], REPEATS)
    print(f"  monitor drift   {monitor_s:6.2f} s wall  {monitor_cpu:6.2f} s CPU")
    python, how = evidently_python()
    if python is None:
        print(f"  Evidently: not run: {how}")
        return
    script = OUT / "run_evidently.py"
    script.write_text(EVIDENTLY_SCRIPT)
    evidently_s, evidently_cpu, evidently_out = best([str(python), str(script), str(reference), str(current)], REPEATS)
    check_agreement(json.loads(monitor_out), json.loads(evidently_out))
    print(f"  Evidently       {evidently_s:6.2f} s wall  {evidently_cpu:6.2f} s CPU  "
          f"(virtualenv {how}: {VENV.relative_to(ROOT)})")
    ratio = evidently_s / monitor_s
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"  outputs agree (normed Wasserstein per column, verdicts, drift share); monitor is {ratio:.1f}x faster "
          f"(CPU {evidently_cpu / monitor_cpu:.1f}x); target >= {TARGET:.0f}x: {verdict}")


if __name__ == "__main__":
    main()
