"""Benchmark: how long `monitor --version`, `--help` and a command's `--help` take to start.

Baseline, in the same run: a bare `python -c pass`, the interpreter's own start-up,
so the ratio is what monitor adds. Target (issue 12): `--version` and `--help`
under 0.3 s, which they reach by importing no command module. On a loaded machine
the interpreter's own start-up grows too: read the ratio and the added seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEAT = 7
TARGET_S = 0.3


def best_of(argv: list[str]) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    baseline = best_of([sys.executable, "-c", "pass"])
    print(f"python -c pass                 {baseline:6.3f} s (baseline)")
    failed = False
    for argv, bound in ((["--version"], TARGET_S), (["--help"], TARGET_S), (["slo", "--help"], None),
                        (["drift", "--help"], None)):
        seconds = best_of([sys.executable, "-m", "monitor", *argv])
        verdict = "" if bound is None else ("  ok" if seconds < bound else f"  OVER {bound} s")
        failed |= bound is not None and seconds >= bound
        print(f"monitor {' '.join(argv):<22} {seconds:6.3f} s  {seconds / baseline:5.1f}x baseline, "
              f"+{seconds - baseline:.3f} s{verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
