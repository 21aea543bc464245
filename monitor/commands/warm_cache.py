"""`monitor warm-cache`: compile the numba drift kernels into numba's on-disk cache."""

from __future__ import annotations

import argparse
import os
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "warm-cache", help="compile the drift kernels ahead of time (e.g. at container build)",
        description="Compile the numba drift kernels once and store them in numba's cache (NUMBA_CACHE_DIR, "
                    "else beside the package), so the daemon's first cycle loads machine code instead of "
                    "compiling.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    from monitor.drift.warmup import warm_kernels

    columns = warm_kernels()
    where = os.environ.get("NUMBA_CACHE_DIR") or "the package's __pycache__ directories"
    print(f"drift kernels ready ({columns} columns compared) in {time.monotonic() - started:.1f}s; cache: {where}")
    return 0
